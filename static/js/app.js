// Behaviour every page shares, without inline script (the Content-Security-Policy forbids it).
(function () {
  // <form data-confirm="Question?">: ask before submitting.
  document.addEventListener("submit", function (event) {
    const question = event.target.getAttribute && event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });
})();
// Keyboard and screen-reader help every page shares (WCAG 2.1 AA).
(function () {
  // After a refused form, focus goes to what says why (the error summary, else the first error message),
  // so keyboard and screen-reader users are not left at the top of the page.
  const problem = document.querySelector("[data-focus-on-load]") || document.querySelector(".messages .msg-error");
  if (problem) {
    if (!problem.hasAttribute("tabindex")) problem.setAttribute("tabindex", "-1");
    problem.focus();
  }

  // A table wider than its card scrolls inside it; with nothing focusable in it, the keyboard could not
  // scroll it, so it becomes a named, focusable region.
  function scrollable() {
    for (const box of document.querySelectorAll(".table-scroll, .table-card")) {
      const wide = box.scrollWidth > box.clientWidth + 1;
      if (!wide || box.querySelector("a[href], button, input, select, textarea, [tabindex]")) continue;
      if (!box.hasAttribute("tabindex")) {
        const heading = box.closest("section, .card") && box.closest("section, .card").querySelector("h2");
        box.setAttribute("tabindex", "0");
        box.setAttribute("role", "region");
        box.setAttribute("aria-label", heading ? `${heading.textContent.trim()} (scrolls sideways)` : "Table (scrolls sideways)");
      }
    }
  }
  scrollable();
  window.addEventListener("resize", scrollable);

  // Escape closes an open menu (<details>) and puts focus back on its summary.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    const open = (event.target.closest && event.target.closest("details[open]")) ||
      document.querySelector("details.dropdown[open]");
    if (!open) return;
    open.removeAttribute("open");
    const summary = open.querySelector("summary");
    if (summary) summary.focus();
  });
  // A click outside an open dropdown menu closes it, as menus do.
  document.addEventListener("click", function (event) {
    for (const menu of document.querySelectorAll("details.dropdown[open]")) {
      if (!menu.contains(event.target)) menu.removeAttribute("open");
    }
  });
})();
