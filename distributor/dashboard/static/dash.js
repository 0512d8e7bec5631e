// swarmqueue dashboard: live updates from the swarm's server-sent events, no reload.
// Text from agents is only ever set with textContent, never parsed as HTML.
(function () {
  "use strict";
  var url = document.body.dataset.stream;
  if (!url) { return; }
  var dataEl = document.getElementById("tasks");
  var tasks = dataEl ? JSON.parse(dataEl.textContent) : {};
  var dag = document.getElementById("dag");
  var collapsed = dag && dag.dataset.collapsed === "1";
  var order = ["blocked", "available", "waiting", "claimed", "in_progress", "completed", "failed", "cancelled"];
  var layerCounts = {};
  Object.keys(tasks).forEach(function (id) {
    var l = tasks[id][0], s = tasks[id][1];
    layerCounts[l] = layerCounts[l] || {};
    layerCounts[l][s] = (layerCounts[l][s] || 0) + 1;
  });
  var lastSeen = null;
  var updates = 0;

  function newer(a, b) {  // stream ids "ms-seq"
    if (b === null) { return true; }
    var x = a.split("-").map(Number), y = b.split("-").map(Number);
    return x[0] > y[0] || (x[0] === y[0] && (x[1] || 0) > (y[1] || 0));
  }
  function setText(id, value) {
    var el = document.getElementById(id);
    if (el) { el.textContent = String(value); }
  }
  function drawLayer(layer) {
    var g = dag.querySelector('.layer[data-layer="' + layer + '"]');
    if (!g) { return; }
    var counts = layerCounts[layer] || {};
    var total = 0;
    order.forEach(function (s) { total += counts[s] || 0; });
    var box = g.querySelector("rect.box");
    var width = Number(box.getAttribute("width")) - 16;
    var x = Number(box.getAttribute("x")) + 8;
    order.forEach(function (s) {
      var seg = g.querySelector('rect.seg[data-status="' + s + '"]');
      var w = total ? (counts[s] || 0) / total * width : 0;
      seg.setAttribute("x", x.toFixed(1));
      seg.setAttribute("width", w.toFixed(1));
      x += w;
    });
    g.querySelector(".layer-total").textContent = String(total);
    g.querySelector(".layer-done").textContent = String(counts.completed || 0);
  }
  function applyStatuses(statuses) {
    var touched = {};
    Object.keys(statuses).forEach(function (id) {
      var now = statuses[id];
      var known = tasks[id];
      if (known) {
        var layer = known[0], before = known[1];
        if (before !== now) {
          layerCounts[layer][before] -= 1;
          layerCounts[layer][now] = (layerCounts[layer][now] || 0) + 1;
          known[1] = now;
          touched[layer] = true;
        }
      }
      if (dag && !collapsed) {
        var node = dag.querySelector('.node[data-task="' + CSS.escape(id) + '"]');
        if (node) { node.setAttribute("class", "node st-" + now); }
      }
    });
    if (collapsed) { Object.keys(touched).forEach(drawLayer); }
  }
  function addEvents(events) {
    var tail = document.querySelector("#tail tbody");
    if (!tail) { return; }
    events.forEach(function (e) {
      var row = document.createElement("tr");
      var details = Object.keys(e.data).map(function (k) { return k + "=" + e.data[k]; }).join(" ");
      [e.id, e.type, e.task, e.agent, details].forEach(function (value) {
        var cell = document.createElement("td");
        cell.textContent = value;
        row.appendChild(cell);
      });
      tail.insertBefore(row, tail.firstChild);
    });
    while (tail.rows.length > 200) { tail.deleteRow(tail.rows.length - 1); }
  }
  var shown = {};
  var statusFrom = {};  // task id -> the update (its newest event id) that set its status
  function apply(u) {
    var fresh = u.events.filter(function (e) { return !shown[e.id]; });
    fresh.forEach(function (e) { shown[e.id] = true; });
    addEvents(fresh);
    updates += 1;
    document.body.dataset.updates = String(updates);
    if (!u.last) { return; }
    // an update about older events (a reconnect's catch-up) may arrive after a newer one: it
    // must not undo what the newer one said, task by task and for the counts
    var statuses = {};
    Object.keys(u.statuses).forEach(function (id) {
      if (!statusFrom[id] || newer(u.last, statusFrom[id])) {
        statusFrom[id] = u.last;
        statuses[id] = u.statuses[id];
      }
    });
    applyStatuses(statuses);
    if (!newer(u.last, lastSeen)) { return; }
    lastSeen = u.last;
    Object.keys(u.counts).forEach(function (s) { setText("count-" + s, u.counts[s]); });
    setText("pct", Number(u.pct).toFixed(1));  // as the server renders it: 50.0
    setText("total", u.total);
    var bar = document.getElementById("progress");
    if (bar) { bar.style.width = u.pct + "%"; }
  }
  var live = document.getElementById("live");
  var source = new EventSource(url);
  source.onopen = function () { if (live) { live.className = "live"; } };
  source.onerror = function () { if (live) { live.className = "live off"; } };
  source.onmessage = function (m) { apply(JSON.parse(m.data)); };
})();
