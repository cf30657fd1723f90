// pianobridge score page: draws the bridge's events (docs/events.md) on the engraved score.
// One model, fed event by event (live, or a recorded session up to the timeline's time),
// and a render step that touches only the notes that changed. Text from the bridge or a
// teacher only ever goes into textContent: nothing is parsed as HTML but verovio's SVG.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const SVGNS = "http://www.w3.org/2000/svg";
  const token = new URLSearchParams(location.search).get("token");
  const now = () => performance.timeOrigin + performance.now();

  // what tests and benchmarks read
  const probe = (window.__pb = { count: 0, lags: [], frameLags: [], firstRender: null, hello: 0 });

  let colours = {}; // mark -> colour (the annotate command's, sent by the server)
  let rank = {}; // mark -> how bad (0 worst)
  let mode = "live";
  let pageEls = []; // .page divs
  let noteEls = new Map(); // note_id -> svg g.note
  let pageOfNote = new Map(); // note_id -> page index
  let measureEls = new Map(); // measure number -> [g.measure]
  let current = -1; // shown page
  let all = []; // every event (review: the session; live: what came)
  let model;

  function fresh() {
    return {
      perNote: new Map(), // "id|pass" -> {presses: Map press -> mark|null, missed, played, suggested}
      shownPass: new Map(), // note_id -> pass shown
      presses: new Map(), // "t|pitch" -> "id|pass" of the note it played
      extras: new Map(), // note_id -> pitches played there that the score does not have
      plan: new Map(basePlan), // "id|pass" -> finger
      hands: new Map(baseHands), // note_id -> hand
      cursor: null, // {note_id, pass, measure, beat}
      counts: { played: 0, correct: 0, wrong_pitch: 0, extra: 0, missed: 0, unheard: 0, early: 0, late: 0, loud: 0, soft: 0, jumps: 0, corrections: 0 },
      tempo: null,
      dirty: new Set(), // note ids to redraw
      log: [], annotations: [],
    };
  }
  let basePlan = new Map(), baseHands = new Map();

  // ------------------------------------------------------------------ model

  const key = (id, pass) => `${id}|${pass}`;
  function note(id, pass) {
    const k = key(id, pass);
    let n = model.perNote.get(k);
    if (!n) model.perNote.set(k, (n = { presses: new Map(), missed: false, played: null }));
    model.shownPass.set(id, pass); // the latest pass anything happened on is the one shown
    model.dirty.add(id);
    return n;
  }
  function worst(marks) {
    let best = null;
    for (const m of marks) if (m && (best === null || rank[m] < rank[best])) best = m;
    return best;
  }
  function pitchName(p) {
    const names = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"];
    return names[p % 12] + (Math.floor(p / 12) - 1);
  }
  function logLine(t, text, cls) {
    model.log.push({ t, text, cls });
    if (model.log.length > 300) model.log.shift();
  }

  function apply(ev) {
    const c = model.counts;
    switch (ev.type) {
      case "note": {
        c.played++;
        if (ev.tempo_bpm) model.tempo = ev.tempo_bpm;
        const press = `${ev.t}|${ev.pitch}`;
        if (ev.verdict === "correct" && ev.match) {
          c.correct++;
          const mark = worst([ev.timing === "early" || ev.timing === "late" ? ev.timing : null,
            ev.loudness === "loud" || ev.loudness === "soft" ? ev.loudness : null]);
          if (ev.timing === "early" || ev.timing === "late") c[ev.timing]++;
          if (ev.loudness === "loud" || ev.loudness === "soft") c[ev.loudness]++;
          const n = note(ev.match.note_id, ev.match.pass);
          n.presses.set(press, mark);
          model.presses.set(press, { k: key(ev.match.note_id, ev.match.pass), id: ev.match.note_id, mark, ev });
          if (ev.suggested_finger) model.plan.set(key(ev.match.note_id, ev.match.pass), ev.suggested_finger);
          if (ev.hand) model.hands.set(ev.match.note_id, ev.hand);
          if (ev.finger) n.played = ev.finger;
        } else if (ev.verdict === "wrong_pitch" && ev.intended) {
          c.wrong_pitch++;
          const n = note(ev.intended.note_id, ev.intended.pass);
          n.presses.set(press, "wrong_pitch");
          n.instead = pitchName(ev.pitch);
          model.presses.set(press, { k: key(ev.intended.note_id, ev.intended.pass), id: ev.intended.note_id, mark: "wrong_pitch", ev });
        } else {
          c.extra++;
          const at = ev.position && ev.position.note_id;
          if (at) {
            const list = model.extras.get(at) || [];
            list.push(pitchName(ev.pitch));
            model.extras.set(at, list.slice(-3));
            model.dirty.add(at);
          }
        }
        if (ev.position) model.cursor = ev.position;
        break;
      }
      case "missed":
        if (ev.sure === false) { // audio: maybe played, not caught; no correction
          c.unheard++;
          break;
        }
        c.missed++;
        note(ev.note_id, ev.pass).missed = true;
        break;
      case "revised": { // the press at of_t was an extra note after all
        const p = model.presses.get(`${ev.of_t}|${ev.pitch}`);
        if (p) {
          const n = model.perNote.get(p.k);
          if (n) n.presses.delete(`${ev.of_t}|${ev.pitch}`);
          model.dirty.add(p.id);
          c.correct--;
          c.extra++;
          if (p.ev.timing === "early" || p.ev.timing === "late") c[p.ev.timing]--;
          if (p.ev.loudness === "loud" || p.ev.loudness === "soft") c[p.ev.loudness]--;
        }
        break;
      }
      case "jump":
        c.jumps++;
        logLine(ev.t, `${ev.kind === "restart" ? "restart" : ev.kind === "back" ? "back" : "skip ahead"}: m. ${ev.from_measure} → m. ${ev.to ? ev.to.measure : "?"}`, "jump");
        if (ev.to) model.cursor = ev.to;
        break;
      case "finger": {
        const p = model.presses.get(`${ev.t}|${ev.pitch}`);
        if (p && ev.finger) {
          model.perNote.get(p.k).played = ev.finger;
          model.dirty.add(p.id);
        }
        break;
      }
      case "fingering_correction": {
        c.corrections++;
        const m = ev.match;
        const played = ev.played || {}, sug = ev.suggested || {};
        logLine(ev.t, `fingering: ${played.hand || ""} ${played.finger} where ${sug.hand || ""} ${sug.finger} was suggested` +
          (m ? ` (${m.note_id})` : "") + (ev.replanned && ev.replanned.length ? `; next ${ev.replanned.length} re-planned` : ""), "finger");
        if (m) {
          note(m.note_id, m.pass).played = played;
        }
        for (const r of ev.replanned || []) {
          model.plan.set(key(r.note_id, r.pass), String(r.finger));
          model.dirty.add(r.note_id);
        }
        break;
      }
      case "annotation": {
        const where = ev.note_id ? `note ${ev.note_id}` : ev.measure ? `m. ${ev.measure}` : model.cursor ? `m. ${model.cursor.measure}` : "";
        model.annotations.push({ t: ev.t, author: ev.author || "", text: ev.text || "", where, note_id: ev.note_id || "", measure: ev.measure || 0 });
        if (ev.note_id) model.dirty.add(ev.note_id);
        logLine(ev.t, `annotation ${where}: ${ev.author ? ev.author + ": " : ""}${ev.text}`, "annotation");
        break;
      }
      case "expression": // how the last phrase was shaped, in the model's words
        logLine(ev.t, String(ev.text || "").slice(0, 300), "expression");
        break;
      case "status":
        if (ev.state !== "score_loaded" || ev.t > 0) logLine(ev.t, `${ev.state}${ev.detail ? ": " + ev.detail : ""}`, "status");
        break;
    }
  }

  // ------------------------------------------------------------------ drawing

  function colourNote(id) {
    const el = noteEls.get(id);
    if (!el) return;
    const pass = model.shownPass.get(id);
    const n = pass === undefined ? null : model.perNote.get(key(id, pass));
    const mark = n ? worst([...n.presses.values(), n.missed ? "missed" : null]) : null;
    if (mark) {
      el.dataset.mark = mark;
      el.dataset.pass = pass;
      el.style.color = colours[mark];
      el.style.fill = colours[mark];
    } else {
      delete el.dataset.mark;
      if (pass !== undefined) el.dataset.pass = pass; else delete el.dataset.pass;
      el.style.color = "";
      el.style.fill = "";
    }
    drawLabels(id, el, n, pass);
  }

  function layer(el) { // our drawings live beside verovio's, in the page's coordinates
    const svg = el.closest("svg.definition-scale") || el.ownerSVGElement;
    let g = svg.querySelector(":scope > g.pb-layer");
    if (!g) {
      g = document.createElementNS(SVGNS, "g");
      g.setAttribute("class", "pb-layer");
      const margin = svg.querySelector(":scope > g.page-margin");
      if (margin && margin.getAttribute("transform")) g.setAttribute("transform", margin.getAttribute("transform"));
      svg.appendChild(g);
    }
    return g;
  }
  const boxes = new Map();
  function box(el) { // a note never moves: measure it once
    let b = boxes.get(el);
    if (!b) { const r = el.getBBox(); b = { x: r.x, y: r.y, width: r.width, height: r.height }; if (b.width) boxes.set(el, b); }
    return b;
  }

  function svgText(parent, cls, x, y, text) {
    const t = document.createElementNS(SVGNS, "text");
    t.setAttribute("class", cls);
    t.setAttribute("x", x);
    t.setAttribute("y", y);
    t.textContent = text;
    parent.appendChild(t);
    return t;
  }

  const labels = new Map(); // note_id -> [svg nodes we drew for it]
  function drawLabels(id, el, n, pass) {
    for (const old of labels.get(id) || []) old.remove();
    const made = [];
    const page = pageOfNote.get(id);
    if (page === undefined || pageEls[page].dataset.drawn !== "1") { labels.delete(id); return; }
    const b = box(el);
    const below = model.hands.get(id) === "left";
    const g = layer(el);
    const finger = model.plan.get(key(id, pass === undefined ? 1 : pass));
    const played = n && n.played;
    let text = finger || "";
    let cls = "pb-finger";
    if (played && played.finger !== undefined) {
      const same = finger && String(played.finger) === String(finger).split("_")[0] && (!played.hand || !model.hands.get(id) || played.hand === model.hands.get(id));
      if (!same) { text = `${played.finger}(${finger || "?"})`; cls += " pb-played"; }
    }
    if (text) {
      const y = below ? b.y + b.height + 260 : b.y - 60;
      made.push(svgText(g, cls, b.x, y, text));
    }
    const extras = model.extras.get(id);
    if (extras && extras.length) made.push(svgText(g, "pb-extra", b.x + b.width + 40, b.y - 260, "+" + extras.join(" ")));
    if (n && n.instead && n.presses.size && [...n.presses.values()].includes("wrong_pitch")) {
      const t = svgText(g, "pb-extra", b.x, below ? b.y + b.height + 520 : b.y - 320, n.instead);
      t.style.fill = colours.wrong_pitch;
      made.push(t);
    }
    const notes = model.annotations.filter((a) => a.note_id === id);
    if (notes.length) {
      const t = svgText(g, "pb-note-mark", b.x + b.width + 20, b.y + b.height + 300, "✎");
      const title = document.createElementNS(SVGNS, "title");
      title.textContent = notes.map((a) => (a.author ? a.author + ": " : "") + a.text).join("\n");
      t.appendChild(title);
      made.push(t);
    }
    labels.set(id, made);
  }

  function drawPageLabels(i) { // fingers for every note of a page, once it is first shown
    const page = pageEls[i];
    if (page.dataset.drawn === "1") return;
    page.dataset.drawn = "1";
    const ids = [...page.querySelectorAll("g.note[data-note]")].map((el) => el.dataset.note);
    ids.forEach((id) => { const el = noteEls.get(id); if (el) box(el); }); // all reads before the writes
    ids.forEach((id) => { model.dirty.add(id); });
  }

  let cursorEl = null, barEl = null;
  function drawCursor() {
    const pos = model.cursor;
    if (!pos) { if (cursorEl) cursorEl.remove(), barEl.remove(); cursorEl = barEl = null; return; }
    const el = noteEls.get(pos.note_id);
    if (!el) return;
    const page = pageOfNote.get(pos.note_id);
    if ($("turn").checked && page !== current) showPage(page);
    const measure = el.closest("g.measure");
    const nb = box(el), mb = box(measure);
    const g = layer(el);
    if (!cursorEl || cursorEl.parentNode !== g) {
      if (cursorEl) cursorEl.remove(), barEl.remove();
      barEl = document.createElementNS(SVGNS, "rect");
      barEl.setAttribute("class", "pb-bar");
      cursorEl = document.createElementNS(SVGNS, "rect");
      cursorEl.setAttribute("class", "pb-cursor");
      cursorEl.id = "cursor";
      g.prepend(barEl);
      g.appendChild(cursorEl);
    }
    cursorEl.setAttribute("x", nb.x - 60);
    cursorEl.setAttribute("y", mb.y - 150);
    cursorEl.setAttribute("width", Math.max(nb.width, 200) + 120);
    cursorEl.setAttribute("height", mb.height + 300);
    barEl.setAttribute("x", mb.x);
    barEl.setAttribute("y", mb.y - 150);
    barEl.setAttribute("width", mb.width);
    barEl.setAttribute("height", mb.height + 300);
    cursorEl.dataset.note = pos.note_id;
    cursorEl.dataset.pass = pos.pass;
    cursorEl.dataset.measure = pos.measure;
    cursorEl.dataset.scoreMeasure = measure ? measure.dataset.n : "";
    $("where").textContent = `m. ${pos.measure}, beat ${+pos.beat.toFixed(2)}` + (pos.pass > 1 ? ` (pass ${pos.pass})` : "") +
      (pos.confidence !== undefined ? ` · confidence ${Math.round(pos.confidence * 100)}%` : "");
  }

  function showPage(i) {
    if (i === undefined || i < 0 || i >= pageEls.length || i === current) return;
    if (current >= 0) pageEls[current].hidden = true;
    pageEls[i].hidden = false;
    current = i;
    $("pageno").textContent = `page ${i + 1} / ${pageEls.length}`;
    drawPageLabels(i);
  }

  function render() {
    drawCursor(); // first: a page it turns to has its notes' labels to draw
    for (const id of model.dirty) colourNote(id);
    model.dirty.clear();
    const c = model.counts;
    for (const k of Object.keys(c)) { const el = $("s-" + k); if (el) el.textContent = c[k]; }
    $("s-tempo").textContent = model.tempo ? `${Math.round(model.tempo)} ♩/min` : "–";
    fillList($("log"), model.log, (li, e) => {
      li.dataset.kind = e.cls;
      li.append(stamp(e.t), document.createTextNode(e.text));
    });
    fillList($("annotations"), model.annotations, (li, a) => {
      li.append(stamp(a.t), document.createTextNode(`${a.where}: ${a.author ? a.author + ": " : ""}${a.text}`));
      li.className = "annotation";
    });
  }
  function stamp(t) {
    const s = document.createElement("span");
    s.className = "t";
    s.textContent = clock(t);
    return s;
  }
  function clock(t) {
    const m = Math.floor(t / 60), s = t - 60 * m;
    return `${m}:${s.toFixed(1).padStart(4, "0")}`;
  }
  function fillList(ol, items, fill) { // append what is new; rebuild after a reset
    if (ol.childElementCount > items.length || ol.dataset.gen !== String(generation)) { ol.textContent = ""; ol.dataset.gen = String(generation); }
    for (let i = ol.childElementCount; i < items.length; i++) {
      const li = document.createElement("li");
      fill(li, items[i]);
      ol.appendChild(li);
    }
    while (ol.childElementCount > 300) ol.firstElementChild.remove();
    ol.scrollTop = ol.scrollHeight;
  }

  let generation = 0;
  function reset() { // forget every event: colours, labels, cursor, lists
    const touched = model ? [...model.shownPass.keys(), ...model.extras.keys(), ...model.annotations.map((a) => a.note_id)] : [];
    model = fresh();
    generation++;
    touched.forEach((id) => model.dirty.add(id));
  }

  // ------------------------------------------------------------------ the score

  function setScore(hello) {
    colours = hello.colours;
    rank = Object.fromEntries(Object.keys(colours).map((k, i) => [k, i]));
    document.querySelectorAll(".key[data-k]").forEach((k) => k.style.setProperty("--c", colours[k.dataset.k] || "#000"));
    basePlan = new Map(hello.plan.map(([id, pass, finger]) => [key(id, pass), finger]));
    baseHands = new Map(hello.plan.map(([id, , , hand]) => [id, hand]));
    $("title").textContent = hello.title;
    document.title = `${hello.title} · pianobridge`;
    if (pageEls.length === hello.pages.length && $("pages").dataset.title === hello.title) return; // a reconnect: same score
    const holder = $("pages");
    holder.textContent = "";
    holder.dataset.title = hello.title;
    noteEls = new Map(); pageOfNote = new Map(); measureEls = new Map(); boxes.clear(); labels.clear();
    pageEls = hello.pages.map((svg, i) => {
      const div = document.createElement("div");
      div.className = "page";
      div.hidden = true;
      div.dataset.page = i + 1;
      holder.appendChild(div);
      return div;
    });
    const fill = (i) => { // verovio's own SVG, from our own server
      pageEls[i].innerHTML = hello.pages[i];
      pageEls[i].querySelectorAll("g.note[data-note]").forEach((el) => { noteEls.set(el.dataset.note, el); pageOfNote.set(el.dataset.note, i); });
      pageEls[i].querySelectorAll("g.measure[data-n]").forEach((el) => {
        const list = measureEls.get(el.dataset.n) || [];
        list.push(el);
        measureEls.set(el.dataset.n, list);
      });
    };
    current = -1;
    // every page is parsed now (note lookups need them), the first one shown at once
    hello.pages.forEach((_, i) => fill(i));
    showPage(0);
  }

  // ------------------------------------------------------------------ review

  let reviewT = 0, playing = null;
  function reviewTo(t) {
    reviewT = t;
    reset();
    for (const ev of all) { if (ev.t > t) break; apply(ev); }
    render();
    $("timeline").value = t;
    $("clock").textContent = clock(t);
  }
  function setupReview() {
    $("review").hidden = false;
    all.sort((a, b) => a.t - b.t);
    const end = all.length ? all[all.length - 1].t : 0;
    $("timeline").max = end;
    $("timeline").oninput = () => reviewTo(+$("timeline").value);
    $("play").onclick = () => {
      if (playing) { clearInterval(playing); playing = null; $("play").textContent = "Play"; return; }
      if (reviewT >= end) reviewTo(0);
      $("play").textContent = "Pause";
      let last = performance.now();
      playing = setInterval(() => {
        const t0 = reviewT, n = performance.now();
        const t1 = Math.min(end, t0 + ((n - last) / 1000) * +$("speed").value);
        last = n;
        for (const ev of all) { if (ev.t > t1) break; if (ev.t > t0) apply(ev); }
        reviewT = t1;
        render();
        $("timeline").value = t1;
        $("clock").textContent = clock(t1);
        if (t1 >= end) $("play").click();
      }, 50);
    };
    $("png").onclick = exportPng;
    $("pdf").onclick = () => { pageEls.forEach((_, i) => drawPageLabels(i)); render(); window.print(); };
    reviewTo(end);
  }
  function exportPng() {
    const svg = pageEls[current].querySelector("svg.score-page");
    const clone = svg.cloneNode(true);
    clone.querySelectorAll(".pb-cursor, .pb-bar, .pb-selected").forEach((e) => e.remove());
    const [, , w, h] = svg.getAttribute("viewBox").split(" ").map(Number);
    const scale = 2;
    clone.setAttribute("width", w * scale);
    clone.setAttribute("height", h * scale);
    const style = document.createElementNS(SVGNS, "style"); // our labels' look, which the page's CSS gave them
    style.textContent = [...document.styleSheets[0].cssRules].filter((r) => r.selectorText && r.selectorText.startsWith("svg .pb-")).map((r) => r.cssText).join("\n");
    clone.prepend(style);
    const url = URL.createObjectURL(new Blob([new XMLSerializer().serializeToString(clone)], { type: "image/svg+xml" }));
    const img = new Image();
    img.onload = () => {
      const canvas = document.createElement("canvas");
      canvas.width = w * scale; canvas.height = h * scale;
      const ctx = canvas.getContext("2d");
      ctx.fillStyle = "#fff";
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      ctx.drawImage(img, 0, 0);
      URL.revokeObjectURL(url);
      canvas.toBlob((blob) => {
        const a = document.createElement("a");
        a.href = URL.createObjectURL(blob);
        a.download = `pianobridge-${($("title").textContent || "score").replace(/[^\w-]+/g, "_")}-page${current + 1}.png`;
        document.body.appendChild(a);
        a.click();
        a.remove();
      }, "image/png");
    };
    img.src = url;
  }

  // ------------------------------------------------------------------ annotating

  let target = null, selectedEl = null;
  function select(ev) {
    if (mode !== "live" || $("annotate").hidden) return;
    const n = ev.target.closest("g.note[data-note]");
    const m = ev.target.closest("g.measure[data-n]");
    if (!n && !m) return;
    const el = n || m;
    target = n ? { note_id: n.dataset.note, measure: +(m ? m.dataset.n : 0) || 0 } : { note_id: "", measure: +m.dataset.n || 0 };
    $("target").textContent = n ? `note ${target.note_id} in m. ${target.measure}` : `m. ${target.measure}`;
    $("target").dataset.set = "1";
    $("send").disabled = false;
    if (selectedEl) selectedEl.remove();
    const b = box(el);
    selectedEl = document.createElementNS(SVGNS, "rect");
    selectedEl.setAttribute("class", "pb-selected");
    selectedEl.id = "selected";
    for (const [k, v] of Object.entries({ x: b.x - 40, y: b.y - 40, width: b.width + 80, height: b.height + 80 })) selectedEl.setAttribute(k, v);
    layer(el).appendChild(selectedEl);
    $("text").focus();
  }
  function send() {
    const text = $("text").value;
    if (!target || !text.trim() || !socket || socket.readyState !== 1) return;
    socket.send(JSON.stringify({ kind: "annotate", author: $("author").value, text, measure: target.measure, note_id: target.note_id }));
    $("reply").textContent = "sending…";
    delete $("reply").dataset.ok;
  }

  // ------------------------------------------------------------------ the socket

  let socket = null, retry = 500, stopped = false;
  function connect() {
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws` + (token ? `?token=${encodeURIComponent(token)}` : "");
    const ws = (socket = new WebSocket(url));
    let live = false;
    ws.onopen = () => { retry = 500; };
    ws.onmessage = (msg) => {
      const m = JSON.parse(msg.data);
      if (m.kind === "hello") {
        mode = m.mode;
        probe.hello++;
        setScore(m);
        $("annotate").hidden = !m.annotate;
        $("text").maxLength = m.max_text;
        all = [];
        reset();
        live = true;
        setConn("live", mode === "review" ? "review" : "live");
        return;
      }
      if (m.kind !== "events") return;
      const t = now();
      for (const ev of m.events) {
        if (ev.type === "_reply") { $("reply").textContent = ev.text; $("reply").dataset.ok = ev.ok; if (ev.ok) $("text").value = ""; continue; }
        all.push(ev);
        probe.count++;
        if (mode !== "review") apply(ev);
      }
      if (mode === "review") { setupReview(); markRendered(); return; }
      render();
      if (m.live) { // how long after the bridge emitted them the page shows them
        const done = now();
        const notes = m.events.filter((e) => e.type === "note" && e._w);
        for (const e of notes) probe.lags.push(done - e._w);
        requestAnimationFrame(() => { const f = now(); for (const e of notes) probe.frameLags.push(f - e._w); });
        void t;
      }
      markRendered();
    };
    ws.onclose = (e) => {
      if (socket !== ws) return;
      if (e.code === 1001 || mode === "review" && live) { stopped = true; setConn("closed", e.reason || "the bridge has stopped"); return; }
      setConn("closed", e.code === 1013 ? "catching up…" : "disconnected: retrying");
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 5000);
    };
  }
  function markRendered() {
    if (probe.firstRender === null && pageEls.length) requestAnimationFrame(() => { probe.firstRender = performance.now(); }); // ms since navigation began
  }
  function setConn(state, text) { $("conn").dataset.state = state; $("conn").textContent = text; }

  $("pages").addEventListener("click", select);
  $("send").onclick = send;
  $("text").addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) send(); });
  $("prev").onclick = () => { $("turn").checked = false; showPage(current - 1); render(); };
  $("next").onclick = () => { $("turn").checked = false; showPage(current + 1); render(); };
  void stopped;
  reset();
  connect();
})();
