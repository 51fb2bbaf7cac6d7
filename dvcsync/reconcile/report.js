"use strict";
// The rows are built by dvcsync; this only shows, hides and reorders them (fast at 20,000 rows),
// and switches the labels between Vietnamese and English (data-en holds the English text).
(() => {
  const byId = (id) => document.getElementById(id);
  let lang = "vi";

  // ------------------------------------------------------------------ language
  let texts = null; // [element, Vietnamese text], read on the first switch
  let attrs = null; // [element, attribute, Vietnamese value]
  const ATTRS = ["title", "placeholder", "aria-label"];
  const onLang = [];

  function setLang(to) {
    if (texts === null) {
      texts = Array.from(document.querySelectorAll("[data-en]"), (el) => [el, el.textContent]);
      attrs = [];
      for (const name of ATTRS) {
        for (const el of document.querySelectorAll(`[data-en-${name}]`)) {
          attrs.push([el, name, el.getAttribute(name) || ""]);
        }
      }
    }
    lang = to;
    document.documentElement.lang = to;
    for (const [el, vi] of texts) el.textContent = to === "en" ? el.dataset.en : vi;
    for (const [el, name, vi] of attrs) {
      el.setAttribute(name, to === "en" ? el.getAttribute(`data-en-${name}`) : vi);
    }
    byId("lang").setAttribute("aria-pressed", String(to === "en"));
    for (const fn of onLang) fn();
  }

  byId("lang").addEventListener("click", () => setLang(lang === "vi" ? "en" : "vi"));
  byId("print").addEventListener("click", () => window.print());

  // ------------------------------------------------------------------ table
  // Every row is in the page, but only one page of the rows that match the filters is shown:
  // laying out 20,000 rows of wrapped text would take the browser many seconds.
  const table = byId("items-table");
  if (!table) return;
  const tbody = table.tBodies[0];
  const heads = Array.from(table.tHead.rows[0].cells);
  const pageSize = Number(table.dataset.pageSize) || 200;
  const rows = Array.from(tbody.rows, (tr) => ({
    tr,
    cat: tr.dataset.cat,
    status: tr.dataset.status,
    agency: tr.cells[2].textContent,
    text: null, // folded text for the search box, built on the first search
  }));
  const fCategory = byId("f-category");
  const fAgency = byId("f-agency");
  const fStatus = byId("f-status");
  const fSearch = byId("f-search");
  const counter = byId("visible-count");
  const noRows = byId("no-rows");
  const pager = byId("pager");
  const pageInfo = byId("page-info");
  const prev = byId("page-prev");
  const next = byId("page-next");
  let matches = rows.slice();
  let shown = rows.filter((r) => !r.tr.hidden);
  let page = 0;

  // "Ha Long" finds "Hạ Long": search ignores case and Vietnamese diacritics.
  const fold = (s) => s.toLowerCase().normalize("NFD").replace(/[\u0300-\u036f]/g, "").replace(/đ/g, "d");
  const num = (n) => n.toLocaleString(lang === "en" ? "en-US" : "vi-VN");

  function showPage() {
    const pages = Math.max(1, Math.ceil(matches.length / pageSize));
    page = Math.min(Math.max(page, 0), pages - 1);
    const first = page * pageSize;
    const slice = matches.slice(first, first + pageSize);
    for (const r of shown) r.tr.hidden = true;
    // Only the shown rows need to be in order: they move to the end, the hidden ones stay put.
    slice.forEach((r, n) => {
      r.tr.classList.toggle("alt", n % 2 === 1);
      tbody.appendChild(r.tr);
      r.tr.hidden = false;
    });
    shown = slice;
    counter.dataset.count = String(matches.length);
    counter.textContent = num(matches.length);
    noRows.hidden = matches.length !== 0;
    pager.hidden = pages <= 1;
    prev.disabled = page === 0;
    next.disabled = page >= pages - 1;
    const span = `${num(first + 1)}–${num(first + slice.length)}`;
    pageInfo.textContent =
      lang === "en"
        ? `Page ${num(page + 1)} of ${num(pages)} · rows ${span}`
        : `Trang ${num(page + 1)}/${num(pages)} · dòng ${span}`;
  }

  function applyFilters() {
    const cat = fCategory.value;
    const agency = fAgency.value;
    const status = fStatus.value;
    const words = fold(fSearch.value).split(/\s+/).filter(Boolean);
    matches = rows.filter((r) => {
      if ((cat && r.cat !== cat) || (agency && r.agency !== agency) || (status && r.status !== status)) {
        return false;
      }
      if (!words.length) return true;
      const text = index(r);
      return words.every((w) => text.includes(w));
    });
    page = 0;
    showPage();
  }

  let pending = 0;
  fSearch.addEventListener("input", () => {
    clearTimeout(pending);
    pending = setTimeout(applyFilters, rows.length > 2000 ? 200 : 50);
  });
  for (const select of [fCategory, fAgency, fStatus]) select.addEventListener("change", applyFilters);
  prev.addEventListener("click", () => {
    page -= 1;
    showPage();
  });
  next.addEventListener("click", () => {
    page += 1;
    showPage();
  });
  // The search text of every row, built while the reader looks at the page, so that the first
  // search does not wait for it.
  const index = (r) => {
    if (r.text === null) r.text = fold(Array.from(r.tr.cells, (c) => c.textContent).join(" "));
    return r.text;
  };
  let indexed = 0;
  function indexSome() {
    const end = Math.min(rows.length, indexed + 1000);
    for (; indexed < end; indexed += 1) index(rows[indexed]);
    if (indexed < rows.length) setTimeout(indexSome, 15);
  }
  onLang.push(() => {
    for (const r of rows) r.text = null; // the labels changed language
    indexed = 0;
    setTimeout(indexSome, 15);
    showPage();
  });
  showPage();
  setTimeout(indexSome, 50);

  // ------------------------------------------------------------------ sorting
  const collator = new Intl.Collator("vi", { numeric: true, sensitivity: "base" });
  const blank = (key) => key === "" || Number.isNaN(key);

  function sortBy(col, type, sign) {
    const keyed = rows.map((r, n) => {
      const cell = r.tr.cells[col];
      const raw = cell.dataset.sort !== undefined ? cell.dataset.sort : cell.textContent.trim();
      return { r, n, key: type === "number" && raw !== "" ? Number(raw) : raw };
    });
    keyed.sort((a, b) => {
      const ea = blank(a.key);
      const eb = blank(b.key);
      if (ea || eb) return ea === eb ? a.n - b.n : ea ? 1 : -1; // blanks last, either way
      let c;
      if (type === "number") c = a.key - b.key;
      else if (type === "date") c = a.key < b.key ? -1 : a.key > b.key ? 1 : 0; // ISO 8601 text
      else c = collator.compare(a.key, b.key);
      return c * sign || a.n - b.n;
    });
    keyed.forEach((k, n) => {
      rows[n] = k.r;
    });
    const matching = new Set(matches);
    matches = rows.filter((r) => matching.has(r));
    page = 0;
    showPage();
  }

  heads.forEach((th, col) => {
    th.querySelector("button").addEventListener("click", () => {
      const dir = th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
      for (const h of heads) h.setAttribute("aria-sort", "none");
      th.setAttribute("aria-sort", dir);
      sortBy(col, th.dataset.type, dir === "ascending" ? 1 : -1);
    });
  });
})();
