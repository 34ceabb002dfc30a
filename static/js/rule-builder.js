// The rule builder offers only the tests that fit each clause's field, suggests names where the value is an id,
// and says what kind of value a test wants. Without this script every test is offered and the server says
// which ones do not fit: nothing here is needed for the form to work.
(function () {
  const source = document.getElementById("rule-operators");
  const form = document.getElementById("rule-form");
  if (!source || !form) return;
  const map = JSON.parse(source.textContent);
  const PLACEHOLDERS = {none: "no value needed", count: "a whole number", text: "words", regex: "e.g. ^tmp_",
                        ref: "a name or an id"};

  function refresh(row, changed) {
    const field = row.querySelector("select[name$='-field']");
    const op = row.querySelector("select[name$='-op']");
    const value = row.querySelector("input[name$='-value']");
    if (!field || !op || !value) return;
    const allowed = map.fields[field.value];
    for (const option of op.options) {
      if (!option.value) continue;
      const fits = !allowed || allowed.includes(option.value);
      option.hidden = !fits;
      option.disabled = !fits;
    }
    // A test the new field does not take is cleared (the steward picks one; a flag's first is chosen for them).
    if (allowed && op.value && !allowed.includes(op.value)) op.value = "";
    if (allowed && changed === field && !op.value && map.flags.includes(field.value)) op.value = allowed[0];
    const list = map.lists[field.value];
    if (list) value.setAttribute("list", list); else value.removeAttribute("list");
    const wants = map.values[op.value];
    value.placeholder = (field.value === "integration" && wants === "text") ? PLACEHOLDERS.ref
      : (PLACEHOLDERS[wants] || "");
  }

  for (const row of form.querySelectorAll(".clause-row")) refresh(row, null);
  form.addEventListener("change", function (event) {
    const row = event.target.closest && event.target.closest(".clause-row");
    if (row) refresh(row, event.target);
  });
})();
