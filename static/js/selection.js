// Ticking rows on an issue list, and "select all N matching this filter" (the server re-runs the filter).
(function () {
  const form = document.getElementById("bulk-form");
  if (!form) return;
  const pageBox = document.getElementById("select-page");
  const rows = () => Array.from(form.querySelectorAll("input.row-check"));
  const button = document.getElementById("edit-selected");
  const note = document.getElementById("selection-note");
  const banner = document.getElementById("select-banner");
  const pageNote = document.getElementById("page-selected-note");
  const allFlag = document.getElementById("select-all-flag");
  const allButton = document.getElementById("select-all-matching");
  const total = Number(banner.dataset.total);

  function refresh() {
    const ticked = rows().filter((box) => box.checked).length;
    const all = allFlag.value === "1";
    button.disabled = !all && ticked === 0;
    if (all) {
      note.textContent = `All ${total.toLocaleString()} matching resources are selected.`;
      button.textContent = `Edit all ${total.toLocaleString()}…`;
      pageNote.textContent = "Every resource matching this filter is selected, on every page. ";
      allButton.textContent = "Clear the selection";
    } else {
      // The note is a live region: it says what the banner now offers, too.
      const more = ticked === rows().length && total > ticked
        ? ` You can also select all ${total.toLocaleString()} matching this filter.` : "";
      note.textContent = ticked ? `${ticked} selected on this page.${more}` : "Tick resources to fix them in Secoda.";
      button.textContent = ticked ? `Edit ${ticked} selected…` : "Edit selected…";
      pageNote.textContent = `All ${ticked} on this page are selected. `;
      allButton.textContent = `Select all ${total.toLocaleString()} matching this filter`;
    }
    const wholePage = rows().length > 0 && ticked === rows().length;
    banner.classList.toggle("visible", (wholePage && total > rows().length) || all);
    if (pageBox) pageBox.checked = wholePage;
  }

  if (pageBox) pageBox.addEventListener("change", () => {
    rows().forEach((box) => { box.checked = pageBox.checked; });
    if (!pageBox.checked) allFlag.value = "";
    refresh();
  });
  form.addEventListener("change", (event) => {
    if (event.target.classList.contains("row-check") && !event.target.checked) allFlag.value = "";
    refresh();
  });
  allButton.addEventListener("click", () => {
    if (allFlag.value === "1") {
      allFlag.value = "";
      rows().forEach((box) => { box.checked = false; });
    } else {
      allFlag.value = "1";
      rows().forEach((box) => { box.checked = true; });
    }
    refresh();
  });
  refresh();
})();
