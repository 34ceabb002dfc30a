// Saved views: "Copy" puts a view's link on the clipboard and says so in a live region.
// The buttons come hidden and are shown here, so none can be pressed before it would work.
(function () {
  document.querySelectorAll("button[data-copy]").forEach(function (button) { button.hidden = false; });
  document.addEventListener("click", function (event) {
    const button = event.target.closest && event.target.closest("button[data-copy]");
    if (!button) return;
    const input = document.getElementById(button.dataset.copy);
    const status = document.getElementById(button.getAttribute("aria-describedby"));
    function done(text) { if (status) status.textContent = text; }
    input.select();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(() => done("Copied."), () => done("Selected: press Ctrl+C to copy."));
    } else {
      done(document.execCommand && document.execCommand("copy") ? "Copied." : "Selected: press Ctrl+C to copy.");
    }
  });
})();
