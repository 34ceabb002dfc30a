// Polls a change set's progress and updates the bar; reloads once it finishes so results show.
(function () {
  const card = document.querySelector("[data-progress-url]");
  if (!card || card.dataset.finished === "true") return;
  const bar = card.querySelector(".progress span");
  const meter = card.querySelector(".progress");
  const pill = document.querySelector(".page-head [data-status]");
  const announce = document.getElementById("progress-announce");
  let spokenTenth = Math.floor(Number(meter.getAttribute("aria-valuenow")) / 10);
  async function poll() {
    try {
      const response = await fetch(card.dataset.progressUrl, {headers: {"Accept": "application/json"}});
      if (response.ok) {
        const stats = await response.json();
        bar.style.width = stats.percent + "%";
        meter.setAttribute("aria-valuenow", stats.percent);
        meter.setAttribute("aria-valuetext", `${stats.percent}% done`);
        for (const el of card.querySelectorAll("[data-field]")) {
          const value = stats[el.dataset.field];
          const text = typeof value === "number" ? value.toLocaleString() : value;
          if (value !== undefined && value !== null && el.textContent !== text) el.textContent = text;
        }
        // The status pill follows the run, and a screen reader hears it change (and every tenth of the way).
        let news = "";
        if (pill && stats.status && pill.dataset.status !== stats.status) {
          pill.dataset.status = stats.status;
          pill.className = `pill pill-${stats.status}`;
          pill.textContent = stats.status_label;
        }
        if (Math.floor(stats.percent / 10) !== spokenTenth) {
          spokenTenth = Math.floor(stats.percent / 10);
          news = `${stats.percent}% done: ${stats.applied.toLocaleString()} applied, ${stats.failed.toLocaleString()} failed.`;
        }
        if (announce && news) announce.textContent = news;
        if (stats.finished) { window.location.reload(); return; }
      }
    } catch (e) { /* network blip: try again */ }
    setTimeout(poll, 1000);
  }
  setTimeout(poll, 700);
})();
