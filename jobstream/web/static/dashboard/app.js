// jobstream dashboard: reads /status every few seconds and /status/history once, draws the
// tasks and a chart of the last hour, and sends /crawl/start and /crawl/stop.
// Every value that comes from the worker is put in the page with textContent (job text and
// error messages are untrusted): this file never assigns innerHTML.
"use strict";

(function () {
  const TOKEN_KEYS = { admin: "jobstream.adminToken", read: "jobstream.readToken" };
  const STATUS_TEXT = {
    idle: "空闲",
    running: "运行中",
    stopped: "已停止",
    error: "出错",
    unavailable: "不可用",
  };
  const COLORS = ["#2563eb", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be123c", "#4d7c0f"];
  const LAG_COLOR = "#dc2626";

  const settings = {
    admin_token: false,
    read_token: false,
    refresh_seconds: 2,
    history_seconds: 3600,
  };
  const cards = new Map(); // task_id -> {root, fields, buttons}
  const series = new Map(); // task_id -> [[unix seconds, rows per minute], ...]
  const names = new Map(); // task_id -> name
  let lagSeries = []; // [[unix seconds, lag], ...]
  let pollTimer = null;
  let failures = 0;

  const $ = (id) => document.getElementById(id);

  class AuthNeeded extends Error {
    constructor(kind) {
      super(kind);
      this.kind = kind;
    }
  }

  // -- numbers and text ---------------------------------------------------------------------

  const integer = new Intl.NumberFormat("zh-CN", { maximumFractionDigits: 0 });
  const decimal = new Intl.NumberFormat("zh-CN", { maximumFractionDigits: 1 });

  function count(value) {
    return typeof value === "number" && isFinite(value) ? integer.format(value) : "—";
  }

  function rate(value) {
    return typeof value === "number" && isFinite(value) ? decimal.format(value) : "—";
  }

  function millis(value) {
    return typeof value === "number" && isFinite(value) ? decimal.format(value) + " ms" : "—";
  }

  function text(value) {
    return value === null || value === undefined || value === "" ? "—" : String(value);
  }

  function localTime(iso) {
    if (!iso) return "—";
    const date = new Date(iso);
    return isNaN(date.getTime()) ? String(iso) : date.toLocaleString("zh-CN", { hour12: false });
  }

  function setText(element, value) {
    if (element.textContent !== value) element.textContent = value;
  }

  // -- tokens ---------------------------------------------------------------------------------

  function storedToken(kind) {
    try {
      return sessionStorage.getItem(TOKEN_KEYS[kind]) || "";
    } catch (e) {
      return "";
    }
  }

  function storeToken(kind, token) {
    try {
      if (token) sessionStorage.setItem(TOKEN_KEYS[kind], token);
      else sessionStorage.removeItem(TOKEN_KEYS[kind]);
    } catch (e) {
      /* storage disabled: the token lives until the page is closed */
    }
    showTokenState();
  }

  function showTokenState() {
    const saved = [];
    if (storedToken("admin")) saved.push("管理令牌");
    if (storedToken("read")) saved.push("读取令牌");
    setText($("token-state"), saved.length ? "已保存：" + saved.join("、") : "");
    $("forget-tokens").hidden = saved.length === 0;
  }

  let asking = null;

  // Ask the operator for a token; resolves to it, or to "" when they cancel.
  function askToken(kind, why) {
    if (asking) return asking;
    const dialog = $("token-dialog");
    const input = $("token-input");
    setText($("token-title"), kind === "admin" ? "需要管理令牌" : "需要读取令牌");
    setText(
      $("token-why"),
      why ||
        (kind === "admin"
          ? "启停采集需要 app.admin_token（环境变量 ADMIN_TOKEN）。"
          : "读取数据需要读取令牌。")
    );
    input.value = "";
    asking = new Promise((resolve) => {
      const finish = (token) => {
        $("token-form").removeEventListener("submit", onSubmit);
        $("token-cancel").removeEventListener("click", onCancel);
        dialog.removeEventListener("cancel", onCancel);
        if (dialog.open) dialog.close();
        asking = null;
        if (token) storeToken(kind, token);
        resolve(token);
      };
      const onSubmit = (event) => {
        event.preventDefault();
        finish(input.value.trim());
      };
      const onCancel = (event) => {
        event.preventDefault();
        finish("");
      };
      $("token-form").addEventListener("submit", onSubmit);
      $("token-cancel").addEventListener("click", onCancel);
      dialog.addEventListener("cancel", onCancel);
      dialog.showModal();
      input.focus();
    });
    return asking;
  }

  // -- HTTP -----------------------------------------------------------------------------------

  async function call(path, method) {
    const kind = method === "GET" ? "read" : "admin";
    const headers = { Accept: "application/json" };
    const token = storedToken(kind);
    if (token) headers.Authorization = "Bearer " + token;
    const options = { method: method, headers: headers, cache: "no-store", credentials: "same-origin" };
    if (method === "POST") {
      // A JSON body: a command no other site's page could send without the browser asking.
      headers["Content-Type"] = "application/json";
      options.body = "{}";
    }
    const response = await fetch(path, options);
    let body = null;
    try {
      body = await response.json();
    } catch (e) {
      body = null;
    }
    if (response.status === 401) {
      storeToken(kind, "");
      throw new AuthNeeded(kind);
    }
    return { status: response.status, body: body };
  }

  // GET with the read token, asking for it when the worker wants one.
  async function read(path) {
    try {
      return await call(path, "GET");
    } catch (error) {
      if (!(error instanceof AuthNeeded)) throw error;
      const token = await askToken("read", "读取数据的令牌不对或已失效，请重新输入。");
      if (!token) throw error;
      return call(path, "GET");
    }
  }

  // -- rendering ------------------------------------------------------------------------------

  function tasksOf(data) {
    return Array.isArray(data.tasks) ? data.tasks : [data];
  }

  function cardFor(task, index) {
    let card = cards.get(task.task_id);
    if (card) return card;
    const root = $("task-template").content.firstElementChild.cloneNode(true);
    root.dataset.taskId = task.task_id;
    const fields = {};
    root.querySelectorAll("[data-field]").forEach((element) => {
      fields[element.dataset.field] = element;
    });
    const buttons = {};
    root.querySelectorAll("[data-action]").forEach((button) => {
      buttons[button.dataset.action] = button;
      button.addEventListener("click", () => control(button.dataset.action, task.task_id, button));
    });
    card = {
      root: root,
      fields: fields,
      buttons: buttons,
      bar: root.querySelector(".progress"),
      fill: root.querySelector(".progress-fill"),
      color: COLORS[index % COLORS.length],
    };
    root.style.setProperty("--task-color", card.color);
    cards.set(task.task_id, card);
    return card;
  }

  function renderTask(task, index) {
    const card = cardFor(task, index);
    const f = card.fields;
    const state = task.status in STATUS_TEXT ? task.status : "unavailable";
    card.root.dataset.status = state;
    setText(f.name, text(task.name || task.task_id));
    setText(f.task_id, task.task_id);
    f.task_id.hidden = !task.name || task.name === task.task_id;
    setText(f.status, STATUS_TEXT[state]);
    f.status.className = "badge badge-" + state;
    f.disabled.hidden = task.enabled !== false;
    const available = state !== "unavailable";
    const percent = available ? parseFloat(task.progress) : NaN;
    const shown = isFinite(percent) ? Math.max(0, Math.min(100, percent)) : 0;
    card.fill.style.width = shown + "%";
    card.bar.setAttribute("aria-valuenow", String(shown));
    card.bar.setAttribute("aria-valuetext", available ? text(task.progress) : "不可用");
    setText(f.progress, available ? text(task.progress) : "—");
    setText(f.current_offset, count(task.current_offset));
    setText(f.total, count(task.total));
    setText(f.rows_per_minute, rate(task.rows_per_minute));
    const rows = task.rows || {};
    setText(f.published, count(rows.published));
    setText(f.filtered, count(rows.filtered));
    setText(f.rejected, count(rows.rejected));
    setText(f.duplicates, count(available ? rows.duplicates || 0 : undefined));
    setText(f.kafka_lag, count(task.kafka_lag));
    const latency = task.api_latency_ms || {};
    setText(f.api_p50, millis(latency.p50));
    setText(f.api_p95, millis(latency.p95));
    setText(f.last_update, localTime(task.last_update));
    const error = available ? task.last_error : task.error;
    f["error-box"].hidden = !error;
    setText(f.last_error, error ? String(error) : "");
    card.buttons.start.disabled = card.busy || !available;
    card.buttons.stop.disabled = card.busy || !available || state === "stopped";
    names.set(task.task_id, task.name || task.task_id);
    return card;
  }

  function render(data, at) {
    const tasks = tasksOf(data);
    const container = $("tasks");
    const seen = new Set();
    tasks.forEach((task, index) => {
      const card = renderTask(task, index);
      seen.add(task.task_id);
      if (container.children[index] !== card.root) {
        container.insertBefore(card.root, container.children[index] || null);
      }
      if (task.status !== "unavailable") {
        append(series, task.task_id, [at, task.rows_per_minute]);
      }
    });
    for (const [taskId, card] of cards) {
      if (!seen.has(taskId)) {
        card.root.remove();
        cards.delete(taskId);
      }
    }
    // The listing and a single task's status both carry the lag and the rows per minute (the
    // listing's is the sum over its tasks).
    const lag = data.kafka_lag;
    if (typeof lag === "number") lagSeries = trim(lagSeries.concat([[at, lag]]), at);
    setText($("sum-rows-per-minute"), rate(data.rows_per_minute));
    setText($("sum-kafka-lag"), count(lag));
    const running = tasks.filter((t) => t.status === "running").length;
    const failing = tasks.filter((t) => t.status === "error" || t.status === "unavailable").length;
    let summary = tasks.length + " 个";
    if (running) summary += " · " + running + " 运行中";
    if (failing) summary += " · " + failing + " 异常";
    setText($("sum-tasks"), summary);
    $("demo-badge").hidden = !data.demo;
    drawChart(at);
  }

  // -- the chart ------------------------------------------------------------------------------

  function trim(points, now) {
    const since = now - settings.history_seconds;
    let first = 0;
    while (first < points.length && points[first][0] < since) first += 1;
    return first ? points.slice(first) : points;
  }

  function append(map, key, point) {
    if (typeof point[1] !== "number") return;
    map.set(key, trim((map.get(key) || []).concat([point]), point[0]));
  }

  function niceMax(value) {
    if (!(value > 0)) return 1;
    const power = Math.pow(10, Math.floor(Math.log10(value)));
    for (const step of [1, 2, 2.5, 5, 10]) {
      if (value <= step * power) return step * power;
    }
    return 10 * power;
  }

  function drawChart(now) {
    const canvas = $("chart");
    const box = canvas.parentElement;
    const width = box.clientWidth;
    const height = box.clientHeight;
    if (!width || !height) return;
    const ratio = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = "11px system-ui, sans-serif";

    const pad = { left: 52, right: 52, top: 10, bottom: 24 };
    const plotW = Math.max(10, width - pad.left - pad.right);
    const plotH = Math.max(10, height - pad.top - pad.bottom);
    // Up to the last hour: the span of the data there is, at least five minutes.
    let oldest = now;
    for (const points of series.values()) if (points.length) oldest = Math.min(oldest, points[0][0]);
    if (lagSeries.length) oldest = Math.min(oldest, lagSeries[0][0]);
    const span = Math.min(settings.history_seconds, Math.max(300, now - oldest));
    const start = now - span;
    const x = (t) => pad.left + ((t - start) / span) * plotW;

    let rowsMax = 0;
    for (const points of series.values()) {
      for (const p of points) rowsMax = Math.max(rowsMax, p[1]);
    }
    let lagMax = 0;
    for (const p of lagSeries) lagMax = Math.max(lagMax, p[1]);
    rowsMax = niceMax(rowsMax);
    lagMax = niceMax(lagMax);
    const yRows = (v) => pad.top + plotH - (v / rowsMax) * plotH;
    const yLag = (v) => pad.top + plotH - (v / lagMax) * plotH;

    // Grid and the two scales: rows per minute on the left, lag on the right.
    ctx.strokeStyle = "#e5e7eb";
    ctx.lineWidth = 1;
    ctx.textBaseline = "middle";
    for (let i = 0; i <= 4; i += 1) {
      const y = pad.top + (plotH * i) / 4;
      ctx.beginPath();
      ctx.moveTo(pad.left, y);
      ctx.lineTo(pad.left + plotW, y);
      ctx.stroke();
      ctx.fillStyle = "#4b5563";
      ctx.textAlign = "right";
      ctx.fillText(compact(rowsMax * (1 - i / 4)), pad.left - 6, y);
      ctx.fillStyle = LAG_COLOR;
      ctx.textAlign = "left";
      ctx.fillText(compact(lagMax * (1 - i / 4)), pad.left + plotW + 6, y);
    }
    ctx.fillStyle = "#4b5563";
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    const spanMinutes = span / 60;
    const step = [1, 2, 5, 10, 15, 20, 30].find((m) => spanMinutes / m <= 6) || 60;
    for (let minutes = Math.floor(spanMinutes / step) * step; minutes >= 0; minutes -= step) {
      const t = now - minutes * 60;
      const label = minutes === 0 ? "现在" : "-" + minutes + " 分";
      ctx.fillText(label, Math.max(pad.left + 12, Math.min(x(t), pad.left + plotW - 12)), pad.top + plotH + 6);
    }

    // A gap of more than a minute between two points is drawn as a gap.
    const line = (points, y, color, dashed) => {
      ctx.strokeStyle = color;
      ctx.lineWidth = 2;
      ctx.setLineDash(dashed ? [5, 4] : []);
      ctx.beginPath();
      let previous = null;
      for (const p of points) {
        if (p[0] < start) continue;
        if (previous === null || p[0] - previous > 60) ctx.moveTo(x(p[0]), y(p[1]));
        else ctx.lineTo(x(p[0]), y(p[1]));
        previous = p[0];
      }
      ctx.stroke();
      ctx.setLineDash([]);
    };
    for (const [taskId, points] of series) {
      const card = cards.get(taskId);
      line(points, yRows, card ? card.color : COLORS[0], false);
    }
    line(lagSeries, yLag, LAG_COLOR, true);
    drawLegend();
  }

  function compact(value) {
    if (value >= 1e6) return decimal.format(value / 1e6) + "M";
    if (value >= 1e4) return decimal.format(value / 1e3) + "k";
    return integer.format(value);
  }

  function drawLegend() {
    const legend = $("legend");
    const items = [];
    for (const [taskId, card] of cards) {
      items.push({ key: "task:" + taskId, label: names.get(taskId) || taskId, color: card.color });
    }
    items.push({ key: "lag", label: "Kafka 积压（右轴，虚线）", color: LAG_COLOR, dashed: true });
    const signature = items.map((i) => i.key + "\u0000" + i.label + "\u0000" + i.color).join("\u0001");
    if (legend.dataset.signature === signature) return;
    legend.dataset.signature = signature;
    legend.replaceChildren(
      ...items.map((item) => {
        const li = document.createElement("li");
        const swatch = document.createElement("span");
        swatch.className = item.dashed ? "swatch swatch-dashed" : "swatch";
        swatch.style.setProperty("--swatch", item.color);
        li.append(swatch, document.createTextNode(item.label + (item.dashed ? "" : "（行/分钟）")));
        return li;
      })
    );
  }

  // -- polling --------------------------------------------------------------------------------

  function connection(ok, message) {
    const element = $("connection");
    element.className = "dot " + (ok ? "dot-ok" : "dot-bad");
    setText(element, message);
  }

  async function refresh() {
    try {
      const { status, body } = await read("/status");
      if (status !== 200 || !body || body.code !== 0) {
        throw new Error((body && body.message) || "HTTP " + status);
      }
      const at = Date.now() / 1000;
      render(body.data, at);
      failures = 0;
      connection(true, "已连接");
      setText($("updated"), "更新于 " + new Date().toLocaleTimeString("zh-CN", { hour12: false }));
    } catch (error) {
      failures += 1;
      const why = error instanceof AuthNeeded ? "需要读取令牌" : String(error.message || error);
      connection(false, "连接异常（" + why + "），稍后重试");
    }
  }

  function schedule() {
    clearTimeout(pollTimer);
    // Back off while the worker does not answer, up to half a minute.
    const wait = settings.refresh_seconds * Math.min(15, Math.pow(2, Math.max(0, failures - 1)));
    pollTimer = setTimeout(async () => {
      if (!document.hidden) await refresh();
      schedule();
    }, wait * 1000);
  }

  async function loadHistory() {
    try {
      const { status, body } = await read("/status/history");
      if (status !== 200 || !body || body.code !== 0) return;
      const data = body.data;
      lagSeries = (data.kafka_lag || []).filter((p) => typeof p[1] === "number");
      for (const task of data.tasks || []) {
        const points = (task.rows_per_minute || []).filter((p) => typeof p[1] === "number");
        series.set(task.task_id, points.concat(series.get(task.task_id) || []));
      }
    } catch (error) {
      /* the chart starts empty and fills from the polls */
    }
  }

  // -- start and stop -------------------------------------------------------------------------

  function say(message, bad) {
    const element = $("message");
    element.hidden = !message;
    element.className = "message" + (bad ? " message-bad" : "");
    setText(element, message || "");
  }

  async function send(action, taskId) {
    const path = "/crawl/" + action + (taskId ? "?task_id=" + encodeURIComponent(taskId) : "");
    if (settings.admin_token && !storedToken("admin")) {
      if (!(await askToken("admin"))) return null;
    }
    try {
      return await call(path, "POST");
    } catch (error) {
      if (!(error instanceof AuthNeeded)) throw error;
      const token = await askToken("admin", "管理令牌不对，请重新输入。");
      if (!token) return null;
      return call(path, "POST");
    }
  }

  async function control(action, taskId, button) {
    const verb = action === "start" ? "开始" : "停止";
    const target = taskId ? "任务“" + (names.get(taskId) || taskId) + "”" : "全部任务";
    const card = taskId ? cards.get(taskId) : null;
    if (card) card.busy = true;
    button.disabled = true;
    say("正在" + verb + target + "…", false);
    try {
      const result = await send(action, taskId);
      if (result === null) {
        say("已取消：没有令牌。", true);
      } else if (result.status === 200) {
        say("已" + verb + target + "。", false);
      } else if (result.status === 202) {
        say("命令已发送，" + target + "尚未全部生效。", false);
      } else {
        const why = result.body && result.body.message ? result.body.message : "HTTP " + result.status;
        say(verb + target + "失败：" + why, true);
      }
    } catch (error) {
      say(verb + target + "失败：" + (error instanceof AuthNeeded ? "令牌错误" : String(error.message || error)), true);
    } finally {
      if (card) card.busy = false;
      button.disabled = false;
      await refresh();
    }
  }

  // -- start ----------------------------------------------------------------------------------

  async function loadSettings() {
    try {
      const response = await fetch("/dashboard/settings", { cache: "no-store" });
      const body = await response.json();
      if (response.ok && body.code === 0) Object.assign(settings, body.data);
    } catch (error) {
      /* keep the defaults */
    }
    setText($("refresh-seconds"), String(settings.refresh_seconds));
  }

  async function main() {
    $("start-all").addEventListener("click", (e) => control("start", null, e.currentTarget));
    $("stop-all").addEventListener("click", (e) => control("stop", null, e.currentTarget));
    $("forget-tokens").addEventListener("click", () => {
      storeToken("admin", "");
      storeToken("read", "");
      say("已清除保存的令牌。", false);
    });
    window.addEventListener("resize", () => drawChart(Date.now() / 1000));
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) refresh();
    });
    showTokenState();
    await loadSettings();
    if (settings.read_token && !storedToken("read")) await askToken("read");
    await loadHistory();
    await refresh();
    schedule();
  }

  document.addEventListener("DOMContentLoaded", main);
})();
