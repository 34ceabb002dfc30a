// The subscribe form shows only the fields that matter for the chosen scope and frequency.
(function () {
  const scope = document.getElementById("id_scope"), frequency = document.getElementById("id_frequency");
  if (!scope || !frequency) return;
  function field(name) { return document.querySelector(`[data-field="${name}"]`); }
  function refresh() {
    field("team").hidden = scope.value !== "team";
    field("integration").hidden = scope.value !== "integration";
    if (field("saved_view")) field("saved_view").hidden = scope.value !== "view";
    field("weekday").hidden = frequency.value !== "weekly";
  }
  scope.addEventListener("change", refresh);
  frequency.addEventListener("change", refresh);
  refresh();
})();
