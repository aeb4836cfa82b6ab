// Sort and filter the table of every test. No library: a few dozen lines, no network.
(function () {
  "use strict";
  var table = document.getElementById("tests");
  if (!table) { return; }
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var search = document.getElementById("test-filter");
  var verdict = document.getElementById("verdict-filter");
  var shown = document.getElementById("shown-count");

  function cellValue(row, index, numeric) {
    var cell = row.cells[index];
    if (numeric) {
      var raw = cell.getAttribute("data-value");
      return raw === null || raw === "" ? null : Number(raw);
    }
    return cell.textContent.trim().toLowerCase();
  }

  function sortBy(header) {
    var index = header.cellIndex;
    var numeric = header.getAttribute("data-type") === "number";
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) { th.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    rows.sort(function (a, b) {
      var x = cellValue(a, index, numeric), y = cellValue(b, index, numeric);
      if (x === y) { return 0; }
      if (x === null) { return 1; }   // unknown figures last, whichever the direction
      if (y === null) { return -1; }
      return (x < y ? -1 : 1) * (ascending ? 1 : -1);
    });
    var fragment = document.createDocumentFragment();
    rows.forEach(function (row) { fragment.appendChild(row); });
    body.appendChild(fragment);
  }

  function applyFilter() {
    var text = search ? search.value.trim().toLowerCase() : "";
    var wanted = verdict ? verdict.value : "";
    var count = 0;
    rows.forEach(function (row) {
      var match = (!text || row.getAttribute("data-test").toLowerCase().indexOf(text) !== -1) &&
                  (!wanted || row.getAttribute("data-verdict") === wanted);
      row.classList.toggle("hidden", !match);
      if (match) { count += 1; }
    });
    if (shown) { shown.textContent = String(count); }
  }

  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
    if (!th.hasAttribute("data-key")) { return; }
    th.tabIndex = 0;
    th.addEventListener("click", function () { sortBy(th); });
    th.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sortBy(th); }
    });
  });
  if (search) { search.addEventListener("input", applyFilter); }
  if (verdict) { verdict.addEventListener("change", applyFilter); }
  applyFilter();
}());
