// Polls a change set's progress and updates the bar; reloads once it finishes so results show.
(function () {
  const card = document.querySelector("[data-progress-url]");
  if (!card || card.dataset.finished === "true") return;
  const bar = card.querySelector(".progress span");
  const meter = card.querySelector(".progress");
  async function poll() {
    try {
      const response = await fetch(card.dataset.progressUrl, {headers: {"Accept": "application/json"}});
      if (response.ok) {
        const stats = await response.json();
        bar.style.width = stats.percent + "%";
        meter.setAttribute("aria-valuenow", stats.percent);
        for (const el of card.querySelectorAll("[data-field]")) {
          const value = stats[el.dataset.field];
          if (value !== undefined && value !== null) el.textContent = typeof value === "number" ? value.toLocaleString() : value;
        }
        if (stats.finished) { window.location.reload(); return; }
      }
    } catch (e) { /* network blip: try again */ }
    setTimeout(poll, 1000);
  }
  setTimeout(poll, 700);
})();
