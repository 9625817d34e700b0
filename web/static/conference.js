// The conference page follows its invitations: while one is on its way, their states are asked for every few
// seconds and shown in place (the page works the same without this script; a reload shows the same).
const table = document.querySelector("table.invitees");
const url = `${location.pathname.replace(/\/$/, "")}/deliveries`;
let rounds = 0;

async function follow() {
  rounds += 1;
  let data;
  try {
    const response = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" });
    if (!response.ok) return;
    data = await response.json();
  } catch (error) {
    setTimeout(follow, 10000);  // the network is away for a moment: try again later
    return;
  }
  for (const invitee of data.invitees) {
    const cell = table.querySelector(`tr[data-invitee="${invitee.id}"] td.delivery`);
    if (!cell || cell.dataset.state === invitee.state) continue;
    cell.dataset.state = invitee.state;
    cell.className = `delivery delivery-${invitee.state}`;
    cell.textContent = invitee.text;
  }
  const pending = document.getElementById("send-pending");
  if (pending) pending.hidden = !data.pending;
  document.body.dataset.deliveries = data.invitees.some((i) => i.state === "queued") ? "moving" : "settled";
  // Every 3 s while something is on its way, for at most ten minutes; then the page rests.
  if (document.body.dataset.deliveries === "moving" && rounds < 200) setTimeout(follow, 3000);
}

if (table) follow();
