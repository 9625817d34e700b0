// The planning wizard: one step at a time, participants added as chips with "+", colleagues suggested as typed.
// Without this script the whole form shows at once and still works (the server checks everything).
const form = document.getElementById("wizard");
const steps = [...form.querySelectorAll("fieldset.step")];
const previous = document.getElementById("previous");
const next = document.getElementById("next");
const submit = document.getElementById("submit");
let step = Number(form.dataset.step) || 1;

function show(n) {
  step = Math.min(Math.max(n, 1), steps.length);
  steps.forEach((fieldset) => { fieldset.hidden = Number(fieldset.dataset.step) !== step; });
  form.querySelectorAll(".steps li").forEach((li) => {
    if (Number(li.dataset.step) === step) li.setAttribute("aria-current", "step");
    else li.removeAttribute("aria-current");
  });
  previous.hidden = step === 1;
  next.hidden = step === steps.length;
  submit.hidden = step !== steps.length;
}

// Moving to a step puts the focus on its first field (never left behind on a field now hidden).
function goTo(n) {
  show(n);
  steps[step - 1].querySelector("input:not([type=hidden]), select, textarea")?.focus();
}

previous.addEventListener("click", () => goTo(step - 1));
next.addEventListener("click", () => goTo(step + 1));

function addChip(field) {
  const input = document.getElementById(field);
  const value = input.value.trim();
  if (!value) return;
  const list = document.getElementById(`${field}-chips`);
  const known = [...list.querySelectorAll("input")].map((i) => i.value);
  if (!known.includes(value)) {
    const li = document.createElement("li");
    const hidden = Object.assign(document.createElement("input"), { type: "hidden", name: field, value });
    const text = Object.assign(document.createElement("span"), { textContent: value });
    const remove = Object.assign(document.createElement("button"), { type: "button", className: "remove",
                                                                     textContent: "×" });
    remove.setAttribute("aria-label", `${list.dataset.removeLabel} ${value}`);  // "Remove dr.durand", not "×"
    li.append(hidden, text, remove);
    list.append(li);
  }
  input.value = "";
  input.focus();
}

form.querySelectorAll("button.add").forEach((button) => {
  button.addEventListener("click", () => addChip(button.dataset.for));
  document.getElementById(button.dataset.for).addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); addChip(button.dataset.for); }
  });
});
form.addEventListener("click", (event) => {
  event.target.closest("ul.chips button.remove")?.closest("li").remove();  // a click may land on the "×" inside
});

const userInput = document.getElementById("user");
const suggestions = document.getElementById("user-suggestions");
let asked = "";
userInput.addEventListener("input", async () => {
  const q = userInput.value.trim();
  if (q.length < 2 || q === asked) return;
  asked = q;
  const response = await fetch(`/api/users?q=${encodeURIComponent(q)}`, { headers: { Accept: "application/json" } });
  if (!response.ok || q !== asked) return;
  suggestions.replaceChildren(...(await response.json()).map((u) =>
    Object.assign(document.createElement("option"), { value: u.username, label: u.name })));
});

form.addEventListener("keydown", (event) => {  // Enter in a field moves on instead of sending a half-filled form
  if (event.key === "Enter" && !event.defaultPrevented && event.target.matches("input:not([type=radio])")
      && step < steps.length) {
    event.preventDefault();
    goTo(step + 1);
  }
});

show(step);
