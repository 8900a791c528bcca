// The console's only script: fetches a page's figures as JSON from the console itself and
// draws them (tiles, SVG bar charts with their numbers a click away, tables, notices).
"use strict";

(function () {
  const body = document.body;
  const lang = body.dataset.lang || "zh-CN";
  const SVG = "http://www.w3.org/2000/svg";
  const COLOURS = ["#2f6db5", "#b0b7c3", "#e07b39", "#3a9a5b"];

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    return node;
  }

  function format(value, kind) {
    if (value === null || value === undefined) return "–";
    const locale = lang === "en" ? "en-GB" : "zh-CN";
    if (kind === "money") {
      return "¥" + value.toLocaleString(locale, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    }
    if (kind === "rate") return (value * 100).toFixed(1) + "%";
    if (kind === "days") return value.toFixed(1);
    return Math.round(value).toLocaleString(locale);
  }

  function heading(block) {
    return el("h2", {}, block.title);
  }

  function tiles(block) {
    const section = el("section", { class: "card", id: block.id });
    section.append(heading(block));
    const list = el("div", { class: "tiles" });
    for (const item of block.items) {
      const tile = el("div", { class: "tile", "data-value": item.value === null ? "" : String(item.value) });
      tile.append(el("span", { class: "label" }, item.label));
      tile.append(el("span", { class: "value" }, format(item.value, item.format)));
      if ("previous" in item) {
        tile.append(el("span", { class: "previous" }, block.previous_label + ": " + format(item.previous, item.format)));
      }
      if (item.key !== undefined) tile.setAttribute("data-key", item.key);
      for (const detail of item.details || []) {
        tile.append(el("span", { class: "detail", "data-value": detail.value === null ? "" : String(detail.value) },
          detail.label + ": " + format(detail.value, detail.format)));
      }
      list.append(tile);
    }
    section.append(list);
    return section;
  }

  function numbersTable(block) {
    const table = el("table", { class: "numbers", hidden: "" });
    const head = el("tr");
    head.append(el("th", {}, ""));
    for (const series of block.series) head.append(el("th", {}, series.name));
    const thead = el("thead");
    thead.append(head);
    table.append(thead);
    const rows = el("tbody");
    block.labels.forEach((name, index) => {
      const row = el("tr", { "data-key": (block.keys || block.labels)[index] });
      row.append(el("th", {}, name));
      for (const series of block.series) {
        const value = series.values[index];
        row.append(el("td", { "data-value": value === null ? "" : String(value) }, format(value, block.format)));
      }
      rows.append(row);
    });
    table.append(rows);
    return table;
  }

  function chart(block) {
    const section = el("section", { class: "card chart", id: block.id });
    section.append(heading(block));
    if (!block.labels.length) {
      section.append(el("p", { class: "notice" }, body.dataset.noData));
      return section;
    }
    const barHeight = 14;
    const groupHeight = barHeight * block.series.length + 10;
    const labelWidth = 120;
    const width = 520;
    const height = groupHeight * block.labels.length + 4;
    const values = block.series.flatMap((series) => series.values).filter((v) => v !== null);
    const top = Math.max(1e-9, ...values.map((v) => Math.abs(v)));
    const drawing = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": block.title });
    block.labels.forEach((name, index) => {
      const y = index * groupHeight + 2;
      const text = svg("text", { x: labelWidth - 6, y: y + groupHeight / 2, "text-anchor": "end", class: "axis" });
      // Charts name each bar by its short key (a store id) where there is one; the table has the full name.
      const short = (block.short || block.keys || block.labels)[index];
      text.textContent = short.length > 14 ? short.slice(0, 13) + "…" : short;
      drawing.append(text);
      block.series.forEach((series, s) => {
        const value = series.values[index];
        const length = value === null ? 0 : (Math.abs(value) / top) * (width - labelWidth - 90);
        const bar = svg("rect", {
          x: labelWidth, y: y + s * barHeight, width: Math.max(length, value ? 1 : 0), height: barHeight - 2,
          fill: COLOURS[s % COLOURS.length], "data-series": series.name, "data-value": value === null ? "" : value,
        });
        const tip = svg("title");
        const note = series.notes ? ` (${series.notes[index]})` : "";
        tip.textContent = `${name} · ${series.name}${note}: ${format(value, block.format)}`;
        bar.append(tip);
        drawing.append(bar);
        const figure = svg("text", { x: labelWidth + length + 4, y: y + s * barHeight + barHeight - 4, class: "figure" });
        figure.textContent = format(value, block.format);
        drawing.append(figure);
      });
    });
    section.append(drawing);
    if (block.series.length > 1) {
      const legend = el("p", { class: "legend" });
      block.series.forEach((series, s) => {
        const key = el("span", { class: "key key-" + (s % COLOURS.length) }, series.name);
        legend.append(key);
      });
      section.append(legend);
    }
    const table = numbersTable(block);
    const toggle = el("button", { type: "button", class: "toggle", "aria-expanded": "false" }, body.dataset.showNumbers);
    toggle.addEventListener("click", () => {
      const showing = table.hidden;
      table.hidden = !showing;
      toggle.setAttribute("aria-expanded", String(showing));
      toggle.textContent = showing ? body.dataset.hideNumbers : body.dataset.showNumbers;
    });
    const wrapper = el("div", { class: "scroll" });
    wrapper.append(table);
    section.append(toggle, wrapper);
    return section;
  }

  function table(block) {
    const section = el("section", { class: "card", id: block.id });
    section.append(heading(block));
    if (!block.rows.length) {
      section.append(el("p", { class: "notice" }, body.dataset.noData));
      return section;
    }
    const wrapper = el("div", { class: "scroll" });
    const grid = el("table");
    const head = el("tr");
    for (const column of block.columns) head.append(el("th", {}, column));
    const thead = el("thead");
    thead.append(head);
    grid.append(thead);
    const rows = el("tbody");
    for (const cells of block.rows) {
      const row = el("tr");
      for (const cell of cells) row.append(el("td", {}, cell));
      rows.append(row);
    }
    grid.append(rows);
    wrapper.append(grid);
    section.append(wrapper);
    return section;
  }

  function notice(block) {
    const section = el("section", { class: "card", id: block.id });
    section.append(heading(block), el("p", { class: "notice" }, block.text));
    return section;
  }

  const DRAW = { tiles, chart, table, notice };

  // Set once a form on the page is sent (signing out, approving, acknowledging): an answer that comes
  // back after that, a 401 from the sign-out itself included, is about a page being left and
  // must not send the browser elsewhere or draw an error over it.
  let leaving = false;
  document.addEventListener("submit", () => {
    leaving = true;
  });

  async function load(container) {
    try {
      const response = await fetch(container.dataset.src, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (leaving) return;
      if (response.status === 401) {
        window.location.assign("/sign-in?ended=1");
        return;
      }
      if (!response.ok) throw new Error(String(response.status));
      const answer = await response.json();
      container.replaceChildren(...answer.blocks.map((block) => DRAW[block.kind](block)));
      container.dataset.loaded = "true";
    } catch (error) {
      if (leaving) return;
      container.replaceChildren(el("p", { class: "error", role: "alert" }, body.dataset.loadFailed));
      container.dataset.loaded = "failed";
      container.dataset.error = String(error);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    for (const container of document.querySelectorAll("[data-src]")) load(container);
  });
})();
