// flumon intranet: sortable tables (click a header). Embedded; no other script.
(function () {
  function key(td) {
    var t = (td.getAttribute('data-v') || td.textContent || '').trim();
    var n = parseFloat(t.replace(/[,%]/g, ''));
    return isNaN(n) || !/^[-\d.,%]+$/.test(t) ? t : n;
  }
  document.querySelectorAll('table.data th.sortable').forEach(function (th) {
    th.addEventListener('click', function () {
      var table = th.closest('table'), body = table.tBodies[0];
      var i = Array.prototype.indexOf.call(th.parentNode.children, th);
      var asc = th.getAttribute('data-dir') !== 'asc';
      th.parentNode.querySelectorAll('th').forEach(function (h) { h.removeAttribute('data-dir'); });
      th.setAttribute('data-dir', asc ? 'asc' : 'desc');
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = key(a.cells[i]), y = key(b.cells[i]);
        var c = (typeof x === 'number' && typeof y === 'number') ? x - y : String(x).localeCompare(String(y), 'zh');
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
  document.querySelectorAll('form.autosubmit select').forEach(function (s) {
    s.addEventListener('change', function () { s.form.submit(); });
  });
})();
