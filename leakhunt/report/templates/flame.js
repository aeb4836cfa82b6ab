/* leakhunt's flame graph: the stacks alive at the peak, drawn from the tree inlined in the page.
   Click a box to zoom into it (its callers stay above it, full width), click the top box to zoom
   out; type in the search box to mark every box whose line, file or function matches; hover for
   the whole line. Self-contained: no library, nothing fetched. */
(function () {
  "use strict";
  var ROW = 18, CHAR = 6.6;

  function fmt(bytes) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0, v = bytes;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (i === 0 ? String(v) : v.toFixed(1)) + " " + units[i];
  }

  /* The longest label that fits whole; else the first one cut, when at least the last (the
     shortest, "file.py:12") fits beside the cut; else the last one cut. */
  function fit(labels, width) {
    var chars = Math.floor((width - 6) / CHAR);
    if (chars < 3) return "";
    var last = labels[labels.length - 1];
    for (var i = 0; i < labels.length; i++) {
      if (labels[i].length <= chars) return labels[i];
      if (i === 0 && chars >= last.length + 4) return labels[0].slice(0, chars - 1) + "\u2026";
    }
    return chars >= 6 ? last.slice(0, chars - 1) + "\u2026" : "";
  }

  function parentsOf(root) {
    var parents = new Map(), stack = [root];
    while (stack.length) {
      var node = stack.pop();
      (node.c || []).forEach(function (child) { parents.set(child, node); stack.push(child); });
    }
    return parents;
  }

  function Flame(host) {
    this.host = host;
    this.root = JSON.parse(document.getElementById(host.dataset.source).textContent);
    this.parents = parentsOf(this.root);
    this.focus = this.root;
    this.query = "";
    this.flipped = false;
    this.canvas = host.querySelector(".flame-canvas");
    this.tip = host.querySelector(".flame-tip");
    this.status = host.querySelector(".flame-status");
    var self = this;
    var search = host.querySelector("input[type=search]");
    if (search) search.addEventListener("input", function () { self.query = search.value.trim().toLowerCase(); self.draw(); });
    var reset = host.querySelector(".flame-reset");
    if (reset) reset.addEventListener("click", function () { self.focus = self.root; self.draw(); });
    var flip = host.querySelector(".flame-flip");
    if (flip) flip.addEventListener("change", function () { self.flipped = flip.checked; self.draw(); });
    window.addEventListener("resize", function () { self.draw(); });
    this.draw();
  }

  Flame.prototype.matches = function (node) {
    if (!this.query) return false;
    return node.t.toLowerCase().indexOf(this.query) >= 0 || node.n[0].toLowerCase().indexOf(this.query) >= 0;
  };

  Flame.prototype.draw = function () {
    var width = this.canvas.clientWidth || 1000, boxes = [], self = this, matched = 0;
    var chain = [], up = this.focus;
    while (up) { chain.unshift(up); up = this.parents.get(up); }
    chain.forEach(function (node, depth) { boxes.push([node, 0, width, depth, true]); });
    var base = chain.length - 1, scale = width / Math.max(this.focus.v, 1), depthMax = base;
    (function walk(node, x, depth) {
      var cx = x;
      (node.c || []).forEach(function (child) {
        var w = child.v * scale;
        if (w >= 0.5) { boxes.push([child, cx, w, depth, false]); depthMax = Math.max(depthMax, depth); walk(child, cx, depth + 1); }
        cx += w;
      });
    })(this.focus, 0, base + 1);
    var seen = new Set();
    (function count(node) {
      if (self.matches(node)) { matched += node.v; return; }
      (node.c || []).forEach(count);
    })(this.focus);
    var rows = depthMax + 1, html = [];
    boxes.forEach(function (b, i) {
      var node = b[0], top = (self.flipped ? rows - 1 - b[3] : b[3]) * ROW;
      var cls = "fb k-" + node.k + (self.matches(node) ? " hit" : "") + (b[4] ? " above" : "");
      html.push('<div class="' + cls + '" data-i="' + i + '" style="left:' + b[1].toFixed(2) + "px;width:" +
                Math.max(b[2] - 1, 0.5).toFixed(2) + "px;top:" + top + 'px"></div>');
      seen.add(node);
    });
    this.canvas.style.height = rows * ROW + "px";
    this.canvas.innerHTML = html.join("");
    var divs = this.canvas.children;
    boxes.forEach(function (b, i) { divs[i].textContent = fit(b[0].n, b[2]); });
    this.boxes = boxes;
    this.canvas.onclick = function (e) {
      var i = e.target.dataset && e.target.dataset.i;
      if (i === undefined) return;
      var node = boxes[+i][0];
      self.focus = (node === self.focus && self.parents.get(node)) ? self.parents.get(node) : node;
      self.draw();
    };
    this.canvas.onmousemove = function (e) {
      var i = e.target.dataset && e.target.dataset.i;
      if (i === undefined) { self.tip.hidden = true; return; }
      self.tip.textContent = boxes[+i][0].t;
      self.tip.hidden = false;
      var r = self.host.getBoundingClientRect();
      self.tip.style.left = Math.min(e.clientX - r.left + 12, r.width - 320) + "px";
      self.tip.style.top = (e.clientY - r.top + 16) + "px";
    };
    this.canvas.onmouseleave = function () { self.tip.hidden = true; };
    var text = "showing " + fmt(this.focus.v) + (this.focus === this.root ? "" : " (zoomed: click the top box to zoom out)");
    if (this.query) text += " \u00b7 \u201c" + this.query + "\u201d: " + fmt(matched) + " (" +
                             (100 * matched / Math.max(this.focus.v, 1)).toFixed(1) + "%)";
    this.status.textContent = text;
  };

  function start() {
    document.querySelectorAll(".flame[data-source]").forEach(function (host) { host.flame = new Flame(host); });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
