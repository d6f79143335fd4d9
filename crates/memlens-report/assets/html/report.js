// memlens HTML report: draws the embedded data (the <script type="application/json"> element)
// with canvas and DOM text nodes only. Names from the profiled program never reach innerHTML.
'use strict';
(function () {
  const D = JSON.parse(document.getElementById('memlens-data').textContent);
  const $ = (id) => document.getElementById(id);
  const S = D.strings;
  const str = (i) => (i == null ? '' : S[i] === undefined ? '' : S[i]);

  const FLAG_IMPORT = 1, FLAG_MEMLENS = 2, FLAG_OTHER = 4, FLAG_LIBRARY = 8;
  const ROW = 18;
  const VIEW_LABELS = { peak: 'Peak', leaks: 'Leaks', allocations: 'Allocations', temporary: 'Temporary' };
  const VIEW_CAPTIONS = {
    peak: 'Memory live at the peak (the high-water mark of the tracked heap).',
    leaks: 'Memory still live when tracking ended.',
    allocations: 'Everything allocated over the run, freed or not.',
    temporary: 'Memory allocated and freed again soon after (temporaries).',
  };

  // ---- text helpers --------------------------------------------------------------------------

  // Control and bidirectional-override characters are shown as escapes, not obeyed.
  function clean(s) {
    return String(s).replace(/[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069]/g,
      (c) => '\\u{' + c.charCodeAt(0).toString(16) + '}');
  }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  function human(b) {
    if (b < 1024) return Math.round(b) + ' B';
    let v = b, u = 0;
    while (v >= 1024 && u < UNITS.length - 1) { v /= 1024; u++; }
    return v.toFixed(1) + ' ' + UNITS[u];
  }
  const pct = (part, total) => (total > 0 ? (100 * part / total).toFixed(1) + '%' : '–');
  const secs = (t) => t.toFixed(2) + ' s';
  const basename = (f) => { const i = f.lastIndexOf('/'); return i >= 0 ? f.slice(i + 1) : f; };

  // ---- frames and the pruned call tree ---------------------------------------------------------

  const NF = D.frames.length / 3;
  const frameFile = (f) => str(D.frames[3 * f]);
  const frameLine = (f) => D.frames[3 * f + 1];
  const frameFunc = (f) => str(D.frames[3 * f + 2]);
  const parents = D.parents, nodeFrames = D.node_frames, nodeFlags = D.node_flags;
  const N = parents.length;
  const frameLabel = (f, flags) => {
    if (flags & FLAG_OTHER) return '(other: smaller stacks)';
    const file = frameFile(f), line = frameLine(f);
    return clean(frameFunc(f)) + '  ' + clean(basename(file)) + (line ? ':' + line : '');
  };

  const views = D.views;
  const state = {
    view: (views.find((v) => v.name === D.initial_view && v.values.length > 0) ||
      views.find((v) => v.values.length > 0) || views[0] || { name: 'peak' }).name,
    moment: -1,
    thread: -1,
    inverted: false,
    hideImport: true,
    hideMemlens: true,
    zoomPath: [],
    search: '',
  };

  if (D.leak_window) {
    const w = D.leak_window;
    const at = (label, t, none) => (label == null ? none : 'checkpoint “' + clean(str(label)) + '” (' + secs(t) + ')');
    VIEW_CAPTIONS.leaks = 'Memory allocated after ' + at(w.from, w.from_t, 'the start') +
      ' and still live at ' + at(w.to, w.to_t, 'exit') + '.';
  }

  function currentValues() {
    if (state.moment >= 0) return { values: D.moments[state.moment].values, stride: 3, counts: false };
    const v = views.find((x) => x.name === state.view);
    return { values: v ? v.values : [], stride: 4, counts: state.view === 'allocations' || state.view === 'temporary' };
  }

  // A tree derived from the pruned call tree for the current settings: hidden frames are
  // skipped (their callees join the caller), the thread filter applies, and the inverted mode
  // starts from the allocating frames.
  let treeCache = { key: '', tree: null };
  function tree() {
    const key = [state.view, state.moment, state.thread, state.inverted, state.hideImport, state.hideMemlens].join('|');
    if (treeCache.key === key) return treeCache.tree;
    const { values, stride, counts } = currentValues();
    const hidden = (flags) => (state.hideImport && (flags & FLAG_IMPORT)) || (state.hideMemlens && (flags & FLAG_MEMLENS));
    const dParent = [0], dFrame = [-1], dFlags = [0], total = [0], self = [0], count = [0];
    const index = new Map();
    const child = (p, f, flags) => {
      const k = p * (NF + 1) + f;
      let c = index.get(k);
      if (c === undefined) {
        c = dParent.length;
        dParent.push(p); dFrame.push(f); dFlags.push(flags); total.push(0); self.push(0); count.push(0);
        index.set(k, c);
      }
      return c;
    };
    if (!state.inverted) {
      const map = new Int32Array(N).fill(-1);
      map[0] = 0;
      const chain = [];
      const mapNode = (n) => {
        while (n > 0 && map[n] < 0) { chain.push(n); n = parents[n]; }
        let d = map[n < 0 ? 0 : n];
        while (chain.length) {
          const m = chain.pop();
          d = hidden(nodeFlags[m]) ? d : child(d, nodeFrames[m], nodeFlags[m]);
          map[m] = d;
        }
        return d;
      };
      for (let i = 0; i < values.length; i += stride) {
        if (state.thread >= 0 && values[i + 1] !== state.thread) continue;
        const d = mapNode(values[i]);
        self[d] += values[i + 2];
        if (stride === 4) count[d] += values[i + 3];
      }
      for (let i = dParent.length - 1; i > 0; i--) {
        total[i] += self[i];
        total[dParent[i]] += total[i];
      }
      total[0] += self[0];
      // Counts are inclusive too.
      for (let i = dParent.length - 1; i > 0; i--) count[dParent[i]] += count[i];
    } else {
      for (let i = 0; i < values.length; i += stride) {
        if (state.thread >= 0 && values[i + 1] !== state.thread) continue;
        const b = values[i + 2], c = stride === 4 ? values[i + 3] : 0;
        let cur = 0;
        total[0] += b; count[0] += c;
        for (let a = values[i]; a > 0; a = parents[a]) {
          if (hidden(nodeFlags[a])) continue;
          cur = child(cur, nodeFrames[a], nodeFlags[a]);
          total[cur] += b; count[cur] += c;
        }
        self[cur] += b;
      }
    }
    const n = dParent.length;
    const kids = new Array(n);
    for (let i = 1; i < n; i++) {
      if (total[i] <= 0) continue;
      const p = dParent[i];
      (kids[p] || (kids[p] = [])).push(i);
    }
    for (let i = 0; i < n; i++) if (kids[i]) kids[i].sort((a, b) => total[b] - total[a] || a - b);
    const t = { parent: dParent, frame: dFrame, flags: dFlags, total, self, count, kids, counts };
    treeCache = { key, tree: t };
    return t;
  }

  function zoomNode(t) {
    let z = 0;
    for (const f of state.zoomPath) {
      const next = (t.kids[z] || []).find((c) => t.frame[c] === f);
      if (next === undefined) break;
      z = next;
    }
    return z;
  }
  function pathOf(t, n) {
    const p = [];
    for (let a = n; a > 0; a = t.parent[a]) p.unshift(t.frame[a]);
    return p;
  }

  // ---- search ----------------------------------------------------------------------------------

  let matchedFrames = null; // Set of frame indices, or null when not searching
  function updateSearch() {
    const q = state.search.trim().toLowerCase();
    if (!q) { matchedFrames = null; return; }
    matchedFrames = new Set();
    for (let f = 0; f < NF; f++) {
      const file = frameFile(f).toLowerCase(), func = frameFunc(f).toLowerCase();
      if (func.includes(q) || file.includes(q) || (file + ':' + frameLine(f)).includes(q)) matchedFrames.add(f);
    }
  }
  const isMatch = (t, n) => matchedFrames !== null && n > 0 && !(t.flags[n] & FLAG_OTHER) && matchedFrames.has(t.frame[n]);
  function searchShare(t) {
    // Bytes under the topmost matching frames, each counted once.
    let bytes = 0;
    const stack = [0];
    while (stack.length) {
      const n = stack.pop();
      if (isMatch(t, n)) { bytes += t.total[n]; continue; }
      for (const c of t.kids[n] || []) stack.push(c);
    }
    return bytes;
  }

  // ---- flame graph -----------------------------------------------------------------------------

  const canvas = $('flame');
  const ctx = canvas.getContext('2d');
  let rects = []; // {n, d, x, w}
  let rows = [];
  const stats = { rects: 0, labels: [], matched: 0, matchedBytes: 0, share: 0, total: 0 };

  function hue(s) {
    let h = 0;
    for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) | 0;
    return Math.abs(h);
  }
  function color(t, n) {
    if (n === 0) return '#b9c0cc';
    const flags = t.flags[n];
    const searching = matchedFrames !== null;
    if (searching && isMatch(t, n)) return '#e0338a';
    let c;
    const v = hue(frameFunc(t.frame[n])) % 20;
    if (flags & FLAG_OTHER) c = [0, 0, 82];
    else if (flags & FLAG_MEMLENS) c = [270, 35, 75 + v / 4];
    else if (flags & FLAG_IMPORT) c = [210, 8, 72 + v / 4];
    else if (flags & FLAG_LIBRARY) c = [200 + v, 55, 70];
    else c = [18 + v, 80, 62];
    if (searching) c = [c[0], c[1] * 0.25, Math.min(92, c[2] + 14)];
    return 'hsl(' + c[0] + ',' + c[1] + '%,' + c[2] + '%)';
  }

  function drawFlame() {
    const t = tree();
    const box = $('flame-box');
    box.hidden = false; // measured before an empty view hides it again
    const W = Math.max(200, box.clientWidth - 2);
    const z = zoomNode(t);
    rects = [];
    stats.labels = [];
    const chain = [];
    for (let a = z; a > 0; a = t.parent[a]) chain.unshift(a);
    chain.unshift(0);
    chain.forEach((a, d) => rects.push({ n: a, d, x: 0, w: W }));
    const base = chain.length - 1;
    const zt = t.total[z];
    if (zt > 0) {
      const stack = [[z, base, 0]];
      while (stack.length) {
        const [n, d, x0] = stack.pop();
        let x = x0;
        const scale = W / zt;
        for (const c of t.kids[n] || []) {
          const w = t.total[c] * scale;
          if (w < 0.4) break; // sorted by size: the rest are narrower still
          rects.push({ n: c, d: d + 1, x, w });
          stack.push([c, d + 1, x]);
          x += w;
        }
      }
    }
    let maxDepth = 0;
    rows = [];
    for (const r of rects) {
      maxDepth = Math.max(maxDepth, r.d);
      (rows[r.d] || (rows[r.d] = [])).push(r);
    }
    const H = (maxDepth + 1) * ROW;
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(W * dpr);
    canvas.height = Math.round(H * dpr);
    canvas.style.height = H + 'px';
    canvas.style.width = W + 'px';
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    ctx.font = '12px system-ui, sans-serif';
    ctx.textBaseline = 'middle';
    const charW = ctx.measureText('abcdefghijklmnopqrstuvwxyz').width / 26;
    for (const r of rects) {
      const y = r.d * ROW;
      ctx.fillStyle = color(t, r.n);
      ctx.fillRect(r.x, y, Math.max(r.w - 0.5, 0.4), ROW - 1);
      if (r.w > 24) {
        const label = rectLabel(t, r.n);
        const max = Math.floor((r.w - 6) / charW);
        const text = label.length > max ? label.slice(0, Math.max(0, max - 1)) + '…' : label;
        ctx.fillStyle = '#111';
        ctx.fillText(text, r.x + 3, y + ROW / 2);
        stats.labels.push(label);
      }
    }
    stats.rects = rects.length;
    stats.total = t.total[0];
    const empty = t.total[0] <= 0;
    $('flame-empty').hidden = !empty;
    $('flame-box').hidden = empty;
    if (empty) {
      $('flame-empty').textContent = state.moment >= 0
        ? 'Nothing was live at this moment.'
        : 'No memory in this view' + (state.thread >= 0 ? ' on this thread' : '') + '.';
    }
    updateSearchResult(t);
    drawCaption(t, z);
  }

  function rectLabel(t, n) {
    if (n === 0) {
      const what = state.moment >= 0 ? 'live at ' + secs(D.moments[state.moment].t) : VIEW_LABELS[state.view] || state.view;
      return 'all: ' + human(t.total[0]) + ' (' + what + ')';
    }
    return frameLabel(t.frame[n], t.flags[n]);
  }

  function updateSearchResult(t) {
    const out = $('search-result');
    if (matchedFrames === null) { out.textContent = ''; stats.matched = 0; stats.matchedBytes = 0; stats.share = 0; return; }
    const bytes = searchShare(t);
    stats.matched = matchedFrames.size;
    stats.matchedBytes = bytes;
    stats.share = t.total[0] > 0 ? bytes / t.total[0] : 0;
    out.textContent = matchedFrames.size === 0
      ? 'no frame matches'
      : 'matched ' + human(bytes) + ' (' + pct(bytes, t.total[0]) + ' of this view)';
  }

  function drawCaption(t, z) {
    let text;
    if (state.moment >= 0) {
      const m = D.moments[state.moment];
      text = 'Live set at ' + secs(m.t) + ': ' + human(t.total[0]) + ' in these stacks' +
        (state.thread >= 0 ? ' on this thread' : '') + ' (tracked-heap sample then: ' + human(m.live) + '). ';
    } else {
      text = (VIEW_CAPTIONS[state.view] || '') + ' ';
    }
    text += 'Width is bytes' + (state.inverted ? '; allocating frames at the top.' : '; callers above callees.');
    if (state.thread >= 0) text += ' Thread: ' + clean(str(D.threads[state.thread])) + '.';
    if (z > 0) text += ' Zoomed into ' + frameLabel(t.frame[z], t.flags[z]) + ' (' + human(t.total[z]) + ', ' + pct(t.total[z], t.total[0]) + '); click the top row or press Escape to zoom out.';
    else text += ' Click a frame to zoom.';
    $('flame-caption').textContent = text;
  }

  function hit(ev) {
    const r = canvas.getBoundingClientRect();
    const x = ev.clientX - r.left, y = ev.clientY - r.top;
    const row = rows[Math.floor(y / ROW)] || [];
    return row.find((q) => x >= q.x && x < q.x + q.w) || null;
  }

  const tip = $('tooltip');
  function showTip(ev, lines) {
    tip.textContent = lines.join('\n');
    tip.hidden = false;
    const x = Math.min(ev.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
    const y = ev.clientY + 16 + tip.offsetHeight > window.innerHeight ? ev.clientY - tip.offsetHeight - 8 : ev.clientY + 16;
    tip.style.left = Math.max(0, x) + 'px';
    tip.style.top = Math.max(0, y) + 'px';
  }
  canvas.addEventListener('mousemove', (ev) => {
    const r = hit(ev);
    if (!r) { tip.hidden = true; return; }
    const t = tree();
    const n = r.n;
    const lines = [];
    if (n === 0) lines.push(rectLabel(t, 0));
    else if (t.flags[n] & FLAG_OTHER) lines.push('(other)', 'Stacks too small to embed, merged (see the note below the graph).');
    else {
      const f = t.frame[n];
      lines.push(clean(frameFunc(f)), clean(frameFile(f)) + ':' + frameLine(f));
    }
    lines.push(human(t.total[n]) + ' (' + pct(t.total[n], t.total[0]) + ' of all' + ')');
    if (n > 0 && t.self[n] > 0) lines.push('self: ' + human(t.self[n]));
    if (t.counts && t.count[n] > 0) lines.push(Math.round(t.count[n]).toLocaleString('en') + ' allocations');
    showTip(ev, lines);
  });
  canvas.addEventListener('mouseleave', () => { tip.hidden = true; });
  canvas.addEventListener('click', (ev) => {
    const r = hit(ev);
    if (!r) return;
    const t = tree();
    const z = zoomNode(t);
    const target = r.n === z && z > 0 ? t.parent[z] : r.n;
    state.zoomPath = pathOf(t, target);
    drawFlame();
  });

  // ---- controls --------------------------------------------------------------------------------

  function drawTabs() {
    const tabs = $('views');
    tabs.textContent = '';
    for (const v of views) {
      const b = el('button', null, VIEW_LABELS[v.name] || v.name);
      b.type = 'button';
      b.dataset.view = v.name;
      b.setAttribute('role', 'tab');
      b.setAttribute('aria-selected', String(state.moment < 0 && state.view === v.name));
      if (v.values.length === 0) { b.disabled = true; b.title = 'No memory recorded for this view'; }
      b.addEventListener('click', () => selectView(v.name));
      tabs.appendChild(b);
    }
    if (state.moment >= 0) {
      const b = el('button', null, 'Live at ' + secs(D.moments[state.moment].t));
      b.type = 'button';
      b.dataset.view = 'moment';
      b.setAttribute('role', 'tab');
      b.setAttribute('aria-selected', 'true');
      tabs.appendChild(b);
    }
  }
  function selectView(name) {
    state.view = name;
    state.moment = -1;
    state.zoomPath = [];
    drawTabs();
    drawFlame();
    drawLines();
    drawTimeline();
  }
  function selectMoment(i) {
    state.moment = i;
    state.zoomPath = [];
    drawTabs();
    drawFlame();
    drawTimeline();
    const m = D.moments[i];
    $('moment-info').textContent = 'Showing the live set at ' + secs(m.t) + ' in the flame graph above (tracked-heap sample then: ' + human(m.live) + ').';
  }

  const threadSel = $('thread');
  {
    const all = el('option', null, 'All threads');
    all.value = '-1';
    threadSel.appendChild(all);
    D.threads.forEach((s, i) => {
      const o = el('option', null, clean(str(s)));
      o.value = String(i);
      threadSel.appendChild(o);
    });
    threadSel.disabled = D.threads.length < 2;
    threadSel.addEventListener('change', () => { state.thread = Number(threadSel.value); state.zoomPath = []; drawFlame(); });
  }
  const bindToggle = (id, key) => $(id).addEventListener('change', (ev) => {
    state[key] = ev.target.checked; state.zoomPath = []; drawFlame();
    if (key === 'hideMemlens') drawLines();
  });
  bindToggle('inverted', 'inverted');
  bindToggle('hide-import', 'hideImport');
  bindToggle('hide-memlens', 'hideMemlens');
  state.inverted = $('inverted').checked;
  state.hideImport = $('hide-import').checked;
  state.hideMemlens = $('hide-memlens').checked;

  let searchTimer = 0;
  $('search').addEventListener('input', (ev) => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => { state.search = ev.target.value; updateSearch(); drawFlame(); }, 120);
  });
  $('reset-zoom').addEventListener('click', () => { state.zoomPath = []; drawFlame(); });
  document.addEventListener('keydown', (ev) => {
    if (ev.key === '/' && document.activeElement !== $('search')) { ev.preventDefault(); $('search').focus(); }
    else if (ev.key === 'Escape') {
      if (state.zoomPath.length) { state.zoomPath = []; drawFlame(); }
      else if (state.search) { $('search').value = ''; state.search = ''; updateSearch(); drawFlame(); }
    }
  });

  // ---- top lines -------------------------------------------------------------------------------

  function drawLines() {
    const key = state.view;
    const body = $('lines').tBodies[0];
    body.textContent = '';
    // memlens's own lines (its start and stop) are hidden with its frames.
    const sites = D.sites.filter((s) => s[key] > 0 && !(state.hideMemlens && s.memlens))
      .sort((a, b) => b[key] - a[key]);
    const v = views.find((x) => x.name === key);
    const estimated = sites.reduce((a, s) => a + s[key], 0);
    const total = Math.max(estimated, (v && v.exact_total) || 0);
    // Sampled figures are estimates, and say so.
    const mark = D.meta.mode === 'exact' ? '' : '~';
    for (const s of sites.slice(0, D.pruning.max_lines)) {
      const tr = el('tr');
      tr.appendChild(el('td', 'num', mark + human(s[key])));
      tr.appendChild(el('td', 'num', pct(s[key], total)));
      // The line's allocations over the run, in every view.
      tr.appendChild(el('td', 'num', mark + Math.round(s.count).toLocaleString('en')));
      tr.appendChild(el('td', 'loc mono', clean(str(s.file)) + ':' + s.line));
      tr.appendChild(el('td', 'mono', clean(str(s.function))));
      const src = el('td', 'src');
      if (s.source) src.appendChild(el('code', null, clean(s.source)));
      tr.appendChild(src);
      body.appendChild(tr);
      // A click shows the line's function, line by line (as `memlens report --source`).
      const fn = (D.functions || [])[s.fn];
      if (fn) {
        tr.classList.add('has-source');
        tr.title = 'Show ' + clean(str(fn.function)) + ' line by line';
        tr.addEventListener('click', () => toggleFunction(tr, fn, s.line, mark));
      }
    }
    $('lines-empty').hidden = sites.length > 0;
    $('lines').hidden = sites.length === 0;
    $('lines-caption').textContent = (VIEW_CAPTIONS[key] || '') +
      ' Each line is the innermost frame of your own code; library frames are folded into the line that called them.' +
      (sites.length > D.pruning.max_lines ? ' The ' + D.pruning.max_lines + ' largest are listed.' : '');
  }

  function toggleFunction(tr, fn, line, mark) {
    const next = tr.nextSibling;
    if (next && next.classList && next.classList.contains('function-view')) { next.remove(); return; }
    const row = el('tr', 'function-view');
    const cell = el('td');
    cell.colSpan = 6;
    cell.appendChild(el('div', 'function-title', clean(str(fn.function)) + ' in ' + clean(str(fn.file)) +
      ' — each line with what it called' + (mark ? ' (estimates)' : '')));
    const table = el('table', 'function-lines mono');
    const head = el('tr');
    for (const h of ['Line', 'Allocated', 'At peak', 'At exit', 'Allocations', 'Source']) head.appendChild(el('th', null, h));
    table.appendChild(head);
    const amount = (b) => (b > 0 ? mark + human(b) : '');
    let previous = null;
    for (const [n, allocated, peak, leaked, count, text] of fn.lines) {
      if (previous !== null && n > previous + 1) {
        const gap = el('tr');
        gap.appendChild(el('td', 'num', '…'));
        table.appendChild(gap);
      }
      previous = n;
      const r = el('tr', n === line ? 'this-line' : null);
      r.appendChild(el('td', 'num', String(n)));
      r.appendChild(el('td', 'num', amount(allocated)));
      r.appendChild(el('td', 'num', amount(peak)));
      r.appendChild(el('td', 'num', amount(leaked)));
      r.appendChild(el('td', 'num', count > 0 ? mark + Math.round(count).toLocaleString('en') : ''));
      const c = el('td', 'src');
      c.appendChild(el('code', null, clean(text)));
      r.appendChild(c);
      table.appendChild(r);
    }
    cell.appendChild(table);
    row.appendChild(cell);
    tr.after(row);
  }

  // ---- memory over time ------------------------------------------------------------------------

  const tl = $('timeline');
  const tctx = tl.getContext('2d');
  const T = D.timeline;
  const PAD = { l: 64, r: 12, t: 10, b: 22 };
  let tlScale = null;
  function drawTimeline() {
    const empty = T.t.length === 0;
    $('timeline-empty').hidden = !empty;
    tl.hidden = empty;
    if (empty) return;
    const W = Math.max(200, tl.clientWidth), H = 220;
    const dpr = window.devicePixelRatio || 1;
    tl.width = Math.round(W * dpr);
    tl.height = Math.round(H * dpr);
    tctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    tctx.clearRect(0, 0, W, H);
    const tmax = Math.max(T.t[T.t.length - 1], D.meta.duration_s, 1e-9);
    let ymax = 1;
    for (let i = 0; i < T.t.length; i++) ymax = Math.max(ymax, T.live[i], T.rss[i]);
    for (const m of D.moments) ymax = Math.max(ymax, m.live);
    ymax *= 1.08;
    const X = (t) => PAD.l + (W - PAD.l - PAD.r) * t / tmax;
    const Y = (b) => H - PAD.b - (H - PAD.t - PAD.b) * b / ymax;
    tlScale = { X, Y, W, H, tmax, ymax };
    tctx.font = '11px system-ui, sans-serif';
    tctx.fillStyle = '#5b6472';
    tctx.strokeStyle = '#d9dde3';
    tctx.lineWidth = 1;
    for (let k = 0; k <= 4; k++) {
      const b = ymax * k / 4, y = Y(b);
      tctx.beginPath(); tctx.moveTo(PAD.l, y); tctx.lineTo(W - PAD.r, y); tctx.stroke();
      tctx.textAlign = 'right'; tctx.textBaseline = 'middle';
      tctx.fillText(human(b), PAD.l - 6, y);
    }
    tctx.textAlign = 'center'; tctx.textBaseline = 'top';
    for (let k = 0; k <= 5; k++) tctx.fillText(secs(tmax * k / 5), X(tmax * k / 5), H - PAD.b + 5);
    const line = (ys, colour) => {
      tctx.strokeStyle = colour; tctx.lineWidth = 1.6; tctx.beginPath();
      for (let i = 0; i < T.t.length; i++) (i ? tctx.lineTo : tctx.moveTo).call(tctx, X(T.t[i]), Y(ys[i]));
      tctx.stroke();
    };
    if (T.rss.some((x) => x > 0)) line(T.rss, '#d9822b');
    line(T.live, '#2456c9');
    tctx.setLineDash([4, 3]);
    tctx.strokeStyle = '#4a8a3a';
    tctx.fillStyle = '#2f6b22';
    tctx.textAlign = 'left'; tctx.textBaseline = 'top';
    for (const c of D.checkpoints) {
      const x = X(c.t);
      tctx.beginPath(); tctx.moveTo(x, PAD.t); tctx.lineTo(x, H - PAD.b); tctx.stroke();
      tctx.fillText(clean(str(c.label)).slice(0, 40), x + 3, PAD.t);
    }
    tctx.setLineDash([]);
    tctx.fillStyle = '#7a48c4';
    D.moments.forEach((m, i) => {
      tctx.fillRect(X(m.t) - 1.5, H - PAD.b - (i === state.moment ? 14 : 7), 3, i === state.moment ? 14 : 7);
    });
    if (state.moment >= 0) {
      const x = X(D.moments[state.moment].t);
      tctx.strokeStyle = '#7a48c4'; tctx.lineWidth = 1.5;
      tctx.beginPath(); tctx.moveTo(x, PAD.t); tctx.lineTo(x, H - PAD.b); tctx.stroke();
    }
    if (D.totals.peak_bytes > 0) {
      tctx.fillStyle = '#c0392b';
      tctx.beginPath(); tctx.arc(X(D.totals.peak_time_s), Y(D.totals.peak_bytes), 3.5, 0, 2 * Math.PI); tctx.fill();
    }
  }
  function timeAt(ev) {
    if (!tlScale) return null;
    const r = tl.getBoundingClientRect();
    const frac = (ev.clientX - r.left - PAD.l) / (tlScale.W - PAD.l - PAD.r);
    return Math.min(Math.max(frac, 0), 1) * tlScale.tmax;
  }
  function nearest(arr, t, key) {
    let best = -1, bd = Infinity;
    for (let i = 0; i < arr.length; i++) {
      const d = Math.abs(key(arr, i) - t);
      if (d < bd) { bd = d; best = i; }
    }
    return best;
  }
  tl.addEventListener('click', (ev) => {
    const t = timeAt(ev);
    if (t === null) return;
    if (D.moments.length === 0) {
      $('moment-info').textContent = 'This report has no live sets along the timeline, so a moment cannot be shown.';
      return;
    }
    selectMoment(nearest(D.moments, t, (a, i) => a[i].t));
  });
  tl.addEventListener('mousemove', (ev) => {
    const t = timeAt(ev);
    if (t === null || T.t.length === 0) return;
    const i = nearest(T.t, t, (a, k) => a[k]);
    showTip(ev, [secs(T.t[i]), 'tracked heap ' + human(T.live[i]), 'RSS ' + human(T.rss[i])]);
  });
  tl.addEventListener('mouseleave', () => { tip.hidden = true; });

  // ---- header, metadata, findings, pruning note ------------------------------------------------

  function drawStatic() {
    const m = D.meta, t = D.totals;
    $('command').textContent = clean(m.command.map(str).join(' '));
    const totals = $('totals');
    const item = (label, value) => { const d = el('div'); d.appendChild(el('span', 'muted', label)); d.appendChild(el('b', null, value)); totals.appendChild(d); };
    item('Peak', human(t.peak_bytes) + ' at ' + secs(t.peak_time_s));
    item('Still live at exit', human(t.leaked_bytes));
    item('Allocated', human(t.allocated_bytes) + ' in ' + t.allocations.toLocaleString('en') + ' allocations');
    item('Peak RSS', human(t.rss_peak_bytes));
    if (m.warning) { $('warning').hidden = false; $('warning').textContent = 'Warning: ' + clean(m.warning); }

    const dl = $('meta');
    const row = (k, v) => { dl.appendChild(el('dt', null, k)); dl.appendChild(el('dd', null, v)); };
    row('Command', clean(m.command.map(str).join(' ')));
    row('Python', clean(m.python));
    row('Process id', String(m.pid));
    row('Mode', m.mode === 'exact' ? 'exact (every allocation recorded)' : 'sampling, one sample every ' + human(m.sample_rate) + ' on average (figures per line are estimates; totals are exact)');
    row('Duration', secs(m.duration_s));
    row('Events recorded', m.events.toLocaleString('en'));
    row('Peak', human(t.peak_bytes) + ' at ' + secs(t.peak_time_s));
    row('Still live at exit', human(t.leaked_bytes));
    row('Allocated', human(t.allocated_bytes) + ' in ' + t.allocations.toLocaleString('en') + ' allocations');
    row('Peak RSS', human(t.rss_peak_bytes));
    row('Threads', D.threads.map((s) => clean(str(s))).join(', ') || '–');
    if (D.checkpoints.length) row('Checkpoints', D.checkpoints.map((c) => clean(str(c.label)) + ' at ' + secs(c.t)).join(', '));

    const list = $('findings');
    for (const f of D.findings) {
      const li = el('li');
      const head = el('div');
      head.appendChild(el('span', 'rule sev-' + f.severity, f.rule + ' ' + f.title));
      head.appendChild(el('span', 'muted', ' (' + f.severity + ', ' + human(f.bytes) + ')'));
      if (f.file != null) head.appendChild(el('span', 'mono', '  ' + clean(str(f.file)) + ':' + f.line + '  ' + clean(str(f.function))));
      li.appendChild(head);
      li.appendChild(el('div', null, clean(f.message)));
      li.appendChild(el('div', 'detail', 'Fix: ' + clean(f.fix)));
      li.appendChild(el('div', 'detail', 'Evidence: ' + clean(f.evidence)));
      list.appendChild(li);
    }
    $('findings-empty').hidden = D.findings.length > 0;

    const p = D.pruning;
    const notes = [];
    if (p.from_sites) notes.push('This capture\'s analysis gave no per-stack figures, so each line\'s figures are drawn on its heaviest stack.');
    if (p.nodes_kept < p.nodes_total) {
      notes.push('Showing ' + p.nodes_kept.toLocaleString('en') + ' of ' + p.nodes_total.toLocaleString('en') +
        ' call-tree nodes: stacks smaller than ' + (100 * p.threshold).toPrecision(2) + '% of every view are merged into “(other)” frames (their bytes still count).');
    }
    if (p.moments_kept < p.moments_total) notes.push(p.moments_kept + ' of ' + p.moments_total + ' moments embedded.');
    if (p.timeline_kept < p.timeline_total) notes.push(p.timeline_kept + ' of ' + p.timeline_total + ' memory samples embedded.');
    if (p.names_cut > 0) notes.push(p.names_cut + ' overlong names cut.');
    $('pruning').textContent = notes.join(' ');
  }

  // ---- heap panel ------------------------------------------------------------------------------

  // The last heap snapshot of the capture, when it holds one: totals, leak suspects, top
  // dominators and the types histogram. Every name is set as text.
  function drawHeap() {
    const H = D.heap;
    if (!H) return;
    const panel = $('heap-panel');
    panel.classList.remove('slot');
    panel.querySelector('.empty').hidden = true;
    const site = (s) => (s ? clean(s.file) + ':' + s.line : '–');
    const num = (n) => Math.round(n).toLocaleString('en');

    const totals = el('div', 'totals');
    totals.id = 'heap-totals';
    const item = (label, value) => { const d = el('div'); d.appendChild(el('span', 'muted', label)); d.appendChild(el('strong', null, value)); totals.appendChild(d); };
    item('Objects', num(H.objects) + ' (' + human(H.bytes) + ')');
    item('Reachable', num(H.reachable_objects) + ' (' + human(H.reachable_bytes) + ')');
    panel.appendChild(totals);

    panel.appendChild(el('h3', null, 'Leak suspects'));
    if (H.suspects.length) {
      const list = el('ol', 'findings');
      list.id = 'heap-suspects';
      for (const s of H.suspects) {
        const li = el('li');
        const head = el('div');
        head.appendChild(el('span', 'rule', clean(s.type)));
        head.appendChild(el('span', 'muted', ' (' + clean(s.kind) + ', ' + human(s.retained_bytes) + ', ' + (100 * s.share).toFixed(1) + '% of reachable memory)'));
        li.appendChild(head);
        li.appendChild(el('div', null, clean(s.message)));
        li.appendChild(el('div', 'detail mono', 'Path: ' + clean(s.path)));
        if (s.alloc_site) li.appendChild(el('div', 'detail mono', 'Allocated at ' + site(s.alloc_site)));
        list.appendChild(li);
      }
      panel.appendChild(list);
    } else {
      panel.appendChild(el('p', 'empty', 'No leak suspect: no single object or type keeps 10% or more of reachable memory alive.'));
    }

    const table = (id, heads, rows) => {
      const t = el('table');
      t.id = id;
      const hr = el('tr');
      for (const [h, cls] of heads) hr.appendChild(el('th', cls, h));
      t.appendChild(el('thead')).appendChild(hr);
      const body = t.appendChild(el('tbody'));
      for (const r of rows) {
        const tr = el('tr');
        r.forEach((v, i) => tr.appendChild(el('td', heads[i][1], v)));
        body.appendChild(tr);
      }
      return t;
    };
    panel.appendChild(el('h3', null, 'Top dominators'));
    panel.appendChild(el('p', 'caption', 'The objects that alone keep the most memory alive (retained: what freeing that object alone would free), with the shortest strong reference path from a root and, for --exact captures, the line that allocated them.'));
    if (H.dominators.length) {
      panel.appendChild(table('heap-dominators',
        [['Retained', 'num'], ['Objects', 'num'], ['Type', 'mono'], ['Retainer path', 'loc mono'], ['Allocated at', 'loc mono']],
        H.dominators.map((d) => [human(d.retained_bytes), num(d.retained_objects), clean(d.type), clean(d.path), site(d.alloc_site)])));
    } else {
      panel.appendChild(el('p', 'empty', 'No object keeps memory alive on its own.'));
    }
    panel.appendChild(el('h3', null, 'Types'));
    panel.appendChild(el('p', 'caption', 'Instances per type with their own (shallow) and kept-alive (retained) bytes, largest retained first; for --exact captures, the line that allocated most of their bytes.'));
    if (H.types.length) {
      panel.appendChild(table('heap-types',
        [['Count', 'num'], ['Shallow', 'num'], ['Retained', 'num'], ['Type', 'mono'], ['Mostly allocated at', 'loc mono']],
        H.types.map((t) => [num(t.count), human(t.shallow_bytes), human(t.retained_bytes), clean(t.type), site(t.alloc_site)])));
    } else {
      panel.appendChild(el('p', 'empty', 'The snapshot holds no objects.'));
    }
    panel.appendChild(el('p', 'muted small', 'At most ' + H.max_rows + ' rows of each list. More: memlens heap CAPTURE (--why TYPE, --format json).'));
  }

  // ---- start -----------------------------------------------------------------------------------

  drawStatic();
  drawHeap();
  drawTabs();
  drawFlame();
  drawLines();
  drawTimeline();
  let resizeTimer = 0;
  window.addEventListener('resize', () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(() => { drawFlame(); drawTimeline(); }, 100); });

  // For tests and the curious: what is on screen.
  window.memlensReport = {
    state,
    stats,
    data: D,
    rects: () => rects.map((r) => ({ node: r.n, depth: r.d, x: r.x, w: r.w, label: rectLabel(tree(), r.n) })),
    momentX: (i) => tlScale ? tlScale.X(D.moments[i].t) : null,
  };
})();
