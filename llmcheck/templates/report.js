// llmcheck's HTML report: sortable tables, filters, expand/collapse all.
// Reads only the page's own attributes and text; never writes markup.
(function () {
  "use strict";
  var each = function (list, fn) { Array.prototype.forEach.call(list, fn); };

  function sortKey(row, col, numeric) {
    var cell = row.cells[col];
    var value = cell.getAttribute("data-sort");
    if (value === null) { value = cell.textContent.trim(); }
    if (numeric) {
      var n = parseFloat(value);
      return isNaN(n) ? -Infinity : n;
    }
    return value.toLowerCase();
  }

  each(document.querySelectorAll("table.sortable"), function (table) {
    var heads = table.tHead.rows[0].cells;
    var body = table.tBodies[0];
    each(body.rows, function (row, i) { row.setAttribute("data-order", String(i)); });
    each(heads, function (th, col) {
      th.setAttribute("tabindex", "0");
      th.title = "sort by " + th.textContent;
      var sort = function () {
        var numeric = th.getAttribute("data-type") === "num";
        var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
        each(heads, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
        var rows = Array.prototype.slice.call(body.rows);
        var keys = new Map(rows.map(function (r) { return [r, sortKey(r, col, numeric)]; }));
        rows.sort(function (a, b) {
          var x = keys.get(a), y = keys.get(b);
          var c = x < y ? -1 : (x > y ? 1 : 0);
          return c * dir || (a.getAttribute("data-order") - b.getAttribute("data-order"));
        });
        var fragment = document.createDocumentFragment();
        rows.forEach(function (r) { fragment.appendChild(r); });
        body.appendChild(fragment);
      };
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); }
      });
    });
  });

  // A table's rows are shown when they match its text box and its status menu.
  function applyFilters(tableId) {
    var table = document.getElementById(tableId);
    if (!table) { return; }
    var box = document.querySelector('input[data-filter="' + tableId + '"]');
    var menu = document.querySelector('select[data-status-filter="' + tableId + '"]');
    var query = box ? box.value.trim().toLowerCase() : "";
    var status = menu ? menu.value : "";
    var shown = 0, rows = table.tBodies[0].rows;
    each(rows, function (row) {
      var text = (row.getAttribute("data-filter") || row.textContent).toLowerCase();
      var tags = (row.getAttribute("data-status") || "").split(/\s+/);
      var hit = (!query || text.indexOf(query) !== -1) &&
                (!status || tags.indexOf(status) !== -1);
      row.hidden = !hit;
      shown += hit ? 1 : 0;
    });
    var count = document.getElementById(tableId + "-count");
    if (count) { count.textContent = shown + " of " + rows.length; }
  }
  each(document.querySelectorAll("input[data-filter]"), function (box) {
    box.addEventListener("input", function () { applyFilters(box.getAttribute("data-filter")); });
  });
  each(document.querySelectorAll("select[data-status-filter]"), function (menu) {
    menu.addEventListener("change", function () {
      applyFilters(menu.getAttribute("data-status-filter"));
    });
  });

  function setOpen(sectionId, open) {
    var section = document.getElementById(sectionId);
    if (section) { each(section.querySelectorAll("details"), function (d) { d.open = open; }); }
  }
  each(document.querySelectorAll("button[data-expand]"), function (b) {
    b.addEventListener("click", function () { setOpen(b.getAttribute("data-expand"), true); });
  });
  each(document.querySelectorAll("button[data-collapse]"), function (b) {
    b.addEventListener("click", function () { setOpen(b.getAttribute("data-collapse"), false); });
  });

  // A link to a test's failures opens them.
  function openTarget() {
    var id = decodeURIComponent(location.hash.slice(1));
    var target = id && document.getElementById(id);
    if (target) {
      var first = target.querySelector("details");
      if (first) { first.open = true; }
    }
  }
  window.addEventListener("hashchange", openTarget);
  openTarget();
}());
