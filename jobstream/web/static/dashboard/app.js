// jobstream dashboard: reads /status and /kafka every few seconds and /status/history once,
// says first what is wrong (Kafka unreachable, messages lost, tasks failing), draws the tasks,
// the consumer groups and a chart, reads recent messages on request, and sends /crawl/start
// and /crawl/stop.
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
  // What an error of each kind means, and what to do about it (the original stays beside it).
  const ERROR_TEXT = {
    credentials: "账号或密码错误：八爪鱼拒绝了登录。请检查 API_USERNAME、API_PASSWORD（api.username、api.password）。",
    task_not_found: "任务 ID 不存在：八爪鱼找不到这个任务。请检查 api.task_id 或 api.tasks 中的 ID。",
    network: "网络错误：连不上八爪鱼 API。请检查网络、代理和 api.base_url。",
    timeout: "请求超时：八爪鱼 API 在 api.request_timeout 秒内没有应答（已重试）。",
    rate_limit: "被限流：八爪鱼 API 多次返回 429。可以调低 api.max_requests_per_second。",
    api_server: "八爪鱼 API 服务端出错（5xx 或无法解析的应答，已重试），下一轮自动再试。",
    api_request: "请求被八爪鱼 API 拒绝（参数错误）。",
    kafka: "写入 Kafka 失败：已发送的页没有及时写入，详见 worker 日志。",
    internal: "程序内部错误，详见 worker 日志。",
    unavailable: "暂时取不到这个任务的状态：负责它的 worker 没有及时应答，或其分区正在重新分配。",
  };
  // Filter groups: a failing task is "error" whether it failed or cannot be asked.
  const STATE_CHIPS = [
    ["all", "全部"],
    ["error", "出错"],
    ["running", "运行中"],
    ["idle", "空闲"],
    ["stopped", "已停止"],
    ["disabled", "已禁用"],
  ];
  const STATE_RANK = { error: 0, unavailable: 1, running: 2, stopped: 3, idle: 4, disabled: 5 };
  const COLORS = ["#2563eb", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be123c", "#4d7c0f"];
  const SUM_COLOR = "#2563eb";
  const LAG_COLOR = "#dc2626";
  // More tasks than this are drawn as one line, their sum.
  const MAX_LINES = COLORS.length;
  // With more cards than this, those off screen are left unrendered until scrolled to.
  const MANY_TASKS = 24;
  // A resolved error is shown for this long after it was resolved.
  const RESOLVED_SHOWN_SECONDS = 24 * 3600;

  const settings = {
    admin_token: false,
    read_token: false,
    refresh_seconds: 2,
    history_seconds: 3600,
  };
  const cards = new Map(); // task_id -> {root, fields, buttons, ...}
  const series = new Map(); // task_id -> [[unix seconds, rows per minute], ...]
  const names = new Map(); // task_id -> name shown
  const view = { text: "", state: "all", sort: "problems" };
  const viewer = { topic: "data", loaded: false };
  let lagSeries = []; // [[unix seconds, lag], ...]
  let lastStatus = null; // the last /status data rendered
  let lastKafka = null; // the last /kafka data
  let lastSuccess = 0; // when /status last answered (ms)
  let connectionProblem = "";
  let pollTimer = null;
  let failures = 0;

  const $ = (id) => document.getElementById(id);

  class AuthNeeded extends Error {
    constructor(kind) {
      super(kind);
      this.kind = kind;
    }
  }

  // -- numbers, times and text --------------------------------------------------------------

  // Formatters made once: making one per value costs more than the whole rest of a render of
  // many tasks.
  const dateTime = new Intl.DateTimeFormat("zh-CN", {
    year: "numeric",
    month: "numeric",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hourCycle: "h23",
  });
  const timeOnly = new Intl.DateTimeFormat("zh-CN", {
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hourCycle: "h23",
  });
  const integer = new Intl.NumberFormat("zh-CN", { maximumFractionDigits: 0 });
  const collator = new Intl.Collator("zh-CN", { numeric: true });
  const decimal = new Intl.NumberFormat("zh-CN", { maximumFractionDigits: 1 });

  function count(value) {
    return typeof value === "number" && isFinite(value) ? integer.format(value) : "—";
  }

  function millis(value) {
    return typeof value === "number" && isFinite(value) ? decimal.format(value) + " ms" : "—";
  }

  function bytes(value) {
    if (!(typeof value === "number" && isFinite(value))) return "—";
    if (value >= 1024 * 1024) return decimal.format(value / 1024 / 1024) + " MB";
    if (value >= 1024) return decimal.format(value / 1024) + " KB";
    return integer.format(value) + " 字节";
  }

  function text(value) {
    return value === null || value === undefined || value === "" ? "—" : String(value);
  }

  function parseTime(iso) {
    if (!iso) return null;
    const date = new Date(iso);
    return isNaN(date.getTime()) ? null : date;
  }

  function localTime(iso) {
    if (!iso) return "—";
    const date = parseTime(iso);
    return date ? dateTime.format(date) : String(iso);
  }

  // "10:30:05" today, "1/14 10:30:05" on another day.
  function clock(iso) {
    const date = parseTime(iso);
    if (!date) return iso ? String(iso) : "—";
    const time = timeOnly.format(date);
    const today = new Date();
    if (date.toDateString() === today.toDateString()) return time;
    return date.getMonth() + 1 + "/" + date.getDate() + " " + time;
  }

  function duration(seconds) {
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return s + " 秒";
    if (s < 3600) return Math.floor(s / 60) + " 分 " + (s % 60) + " 秒";
    if (s < 86400) return Math.floor(s / 3600) + " 小时 " + Math.floor((s % 3600) / 60) + " 分";
    return Math.floor(s / 86400) + " 天 " + Math.floor((s % 86400) / 3600) + " 小时";
  }

  // "10:30:05（3 分 2 秒前）", or "（3 分 2 秒后）" for a time to come.
  function when(iso) {
    const date = parseTime(iso);
    if (!date) return iso ? String(iso) : "—";
    const seconds = (Date.now() - date.getTime()) / 1000;
    if (Math.abs(seconds) < 1.5) return clock(iso) + "（刚刚）";
    return clock(iso) + "（" + duration(Math.abs(seconds)) + (seconds >= 0 ? "前" : "后") + "）";
  }

  // A time to come: "10:35:05（2 分 3 秒后）", or "即将开始" once it is due.
  function upcoming(iso) {
    const date = parseTime(iso);
    if (!date) return iso ? String(iso) : "—";
    const seconds = (date.getTime() - Date.now()) / 1000;
    return clock(iso) + (seconds < 1.5 ? "（即将开始）" : "（" + duration(seconds) + "后）");
  }

  // The anomaly text starts with its ISO time: "2026-01-15T10:30:00+08:00 cursor jump".
  function splitTimed(value) {
    const found = /^(\S+)\s+([\s\S]*)$/.exec(String(value || ""));
    if (found && parseTime(found[1])) return { at: found[1], text: found[2] };
    return { at: "", text: String(value || "") };
  }

  function setText(element, value) {
    if (element.textContent !== value) element.textContent = value;
  }

  function setHidden(element, hidden) {
    if (element.hidden !== hidden) element.hidden = hidden;
  }

  function unnamed(task) {
    return !task.name || task.name === task.task_id;
  }

  function displayName(task) {
    return unnamed(task) ? "未命名任务" : String(task.name);
  }

  function errorText(kind) {
    return ERROR_TEXT[kind] || ERROR_TEXT.internal;
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

  function dataOf(result) {
    const { status, body } = result;
    if (status !== 200 || !body || body.code !== 0) {
      throw new Error((body && body.message) || "HTTP " + status);
    }
    return body.data;
  }

  // -- banners: what is wrong, first ----------------------------------------------------------

  function banner(kind, title, lines, action) {
    const element = document.createElement("div");
    element.className = "banner banner-" + kind;
    element.dataset.banner = title;
    const strong = document.createElement("strong");
    strong.textContent = title;
    element.append(strong);
    for (const line of lines) {
      const p = document.createElement("p");
      p.textContent = line;
      element.append(p);
    }
    if (action) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "link";
      button.textContent = action.label;
      button.addEventListener("click", action.run);
      element.append(button);
    }
    return element;
  }

  function kafkaBanners(data) {
    const found = [];
    const spool = data.spool || {};
    if (data.kafka_reachable === false) {
      const since = data.kafka_unreachable_since;
      const lines = [
        since
          ? "自 " + clock(since) + " 起连不上 Kafka，已持续 " + duration((Date.now() - parseTime(since).getTime()) / 1000) + "。"
          : "worker 连不上 Kafka。",
      ];
      if (spool.enabled === false) {
        lines.push("未启用本地暂存（spool.enabled: false）：采集暂停，等待 Kafka 恢复。");
      } else if (spool.max_bytes && spool.bytes >= spool.max_bytes * 0.99) {
        lines.push(
          "本地暂存已满（" + bytes(spool.bytes) + " / " + bytes(spool.max_bytes) + "）：采集暂停，等待 Kafka 恢复后继续，不丢数据。"
        );
      } else {
        lines.push(
          "已取到、还没写入 Kafka 的页暂存在本地：" + count(spool.pages) + " 页、" + count(spool.rows) + " 行、" +
            bytes(spool.bytes) + "（上限 " + bytes(spool.max_bytes) + "）。Kafka 恢复后自动发送，不丢数据。"
        );
      }
      lines.push("此期间 /consume 与 /consume/stream 返回 503，积压无法测量。");
      found.push(banner("bad", "Kafka 不可达", lines));
    } else if (spool.pages > 0) {
      found.push(
        banner("info", "正在发送本地暂存", [
          "Kafka 已恢复，本地暂存中还有 " + count(spool.pages) + " 页、" + count(spool.rows) + " 行等待发送。",
        ])
      );
    }
    return found;
  }

  function lossBanners(kafka) {
    const found = [];
    for (const loss of (kafka && kafka.losses) || []) {
      if (loss.kind === "embedded_restart") {
        found.push(
          banner("warn", "内置 broker 已重启，job_data 中之前的消息已丢失", [
            "worker 于 " + clock(loss.at) + " 启动时，内置 broker（Tansu）是新的：它只在内存中保存数据，上次运行发布到 job_data 的 " +
              count(loss.messages) + " 条消息和 job_rejects 中的 " + count(loss.rejects) + " 条都已不在 Kafka 中。",
            "各任务从 SQLite 镜像中的进度继续采集，不会重新发布这些行：任务卡片上的“保留”“拒绝”包括已丢失的行，" +
              "所以可能大于 job_data 中的消息数。曲线也从这次启动开始。需要持久保存，请连接真实 Kafka（kafka.bootstrap_servers）。",
          ])
        );
      } else {
        found.push(
          banner("warn", "job_data 的消息已丢失", [
            clock(loss.at) + " 发现 job_data 的末尾偏移量倒退：主题被删除或重建，其中原有的消息已不在。",
            "详情：" + text(loss.detail),
          ])
        );
      }
    }
    return found;
  }

  function failingBanner(tasks) {
    const failing = tasks.filter((t) => t.status === "error" || t.status === "unavailable");
    if (!failing.length) return [];
    const shown = failing.slice(0, 5).map((t) => {
      const kind = t.status === "unavailable" ? "unavailable" : t.error_kind;
      const short = errorText(kind).split("：")[0].replace(/[。.]$/, "");
      return displayName(t) + (unnamed(t) ? " " + String(t.task_id).slice(0, 8) : "") + "（" + short + "）";
    });
    const more = failing.length > shown.length ? " 等 " + failing.length + " 个" : "";
    return [
      banner(
        "bad",
        failing.length + " 个任务采集失败",
        [shown.join("、") + more + "。详见下方任务卡片中的错误和原始信息。"],
        {
          label: "只看出错的任务",
          run: () => {
            view.state = "error";
            renderChips();
            arrange();
            $("tasks-title").scrollIntoView({ block: "start" });
          },
        }
      ),
    ];
  }

  function staleBanner() {
    if (!connectionProblem) return [];
    const since = lastSuccess ? "页面上的数据停在 " + timeOnly.format(new Date(lastSuccess)) + "。" : "还没有取到任何数据。";
    return [banner("bad", "连不上 worker", [connectionProblem + "；" + since + "稍后自动重试。"])];
  }

  function renderBanners() {
    const found = [...staleBanner()];
    if (lastStatus) {
      found.push(...kafkaBanners(lastStatus), ...lossBanners(lastKafka), ...failingBanner(tasksOf(lastStatus)));
    }
    const container = $("banners");
    const signature = found.map((b) => b.textContent).join("\u0001");
    if (container.dataset.signature === signature) return;
    container.dataset.signature = signature;
    container.replaceChildren(...found);
  }

  // -- task cards -----------------------------------------------------------------------------

  function tasksOf(data) {
    return Array.isArray(data.tasks) ? data.tasks : [data];
  }

  function stateOf(task) {
    if (task.status === "error" || task.status === "unavailable") return "error";
    if (task.enabled === false) return "disabled";
    return task.status in STATUS_TEXT ? task.status : "error";
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
      if (button.dataset.action === "rejects") {
        button.addEventListener("click", () => openMessages("rejects", task.task_id));
      } else {
        button.addEventListener("click", () => control(button.dataset.action, task.task_id, button));
      }
    });
    card = {
      root: root,
      fields: fields,
      buttons: buttons,
      index: index,
      bar: root.querySelector(".progress"),
      fill: root.querySelector(".progress-fill"),
      color: COLORS[index % COLORS.length],
    };
    root.style.setProperty("--task-color", card.color);
    cards.set(task.task_id, card);
    return card;
  }

  function renderError(card, task, available) {
    const f = card.fields;
    const error = available ? task.last_error : task.error;
    setHidden(f["error-box"], !error);
    setText(f.last_error, error ? String(error) : "");
    if (!error) return;
    const retrying = available && task.status === "running";
    f["error-box"].classList.toggle("error-retrying", retrying);
    let title = available ? "采集失败" : "状态不可用";
    if (available && task.last_error_at) title += " · " + when(task.last_error_at);
    if (available && task.consecutive_failures > 1) title += " · 连续 " + task.consecutive_failures + " 轮";
    if (available && typeof task.failing_offset === "number") {
      title += " · 在 offset " + count(task.failing_offset) + " 处";
      if (task.stuck_since && task.stuck_since !== task.last_error_at) title += "（自 " + clock(task.stuck_since) + " 起）";
    }
    setText(f.error_title, title);
    setText(f.error_zh, errorText(available ? task.error_kind : "unavailable"));
    let note = "";
    if (retrying) note = "正在重试：新一轮采集已经开始，成功结束后此错误标为已解决。";
    else if (available && task.status === "error" && task.next_run_at) note = "下次重试：" + upcoming(task.next_run_at) + "。";
    else if (available && task.status === "stopped") note = "任务已停止：点“开始”后重试。";
    setText(f.error_note, note);
    setHidden(f.error_note, !note);
  }

  function renderResolved(card, task, available) {
    const f = card.fields;
    const resolvedAt = parseTime(task.resolved_at);
    const recent = resolvedAt && (Date.now() - resolvedAt.getTime()) / 1000 < RESOLVED_SHOWN_SECONDS;
    const show = available && !task.last_error && task.resolved_error && recent;
    setHidden(f["resolved-box"], !show);
    if (!show) return;
    setText(
      f.resolved_title,
      "已解决 · " + clock(task.resolved_error_at) + " 出错，" + when(task.resolved_at) + " 恢复"
    );
    setText(f.resolved_zh, errorText(task.resolved_error_kind));
    setText(f.resolved_error, String(task.resolved_error));
  }

  function renderTask(task, index) {
    const card = cardFor(task, index);
    card.index = index;
    const f = card.fields;
    const available = task.status !== "unavailable";
    const state = task.status in STATUS_TEXT ? task.status : "unavailable";
    card.root.dataset.status = state;
    card.state = stateOf(task);
    card.name = displayName(task);
    card.search = (String(task.name || "") + " " + task.task_id).toLowerCase();
    setText(f.name, card.name);
    f.name.classList.toggle("unnamed", unnamed(task));
    setText(f.task_id, task.task_id);
    setText(f.status, STATUS_TEXT[state]);
    f.status.className = "badge badge-" + state;
    setHidden(f.disabled, task.enabled !== false);
    const percent = available ? parseFloat(task.progress) : NaN;
    const shown = isFinite(percent) ? Math.max(0, Math.min(100, percent)) : 0;
    card.fill.style.width = shown + "%";
    card.bar.setAttribute("aria-valuenow", String(shown));
    card.bar.setAttribute("aria-valuetext", available ? text(task.progress) : "不可用");
    setText(f.progress, available ? text(task.progress) : "—");
    setText(f.current_offset, count(task.current_offset));
    setText(f.total, count(task.total));
    setText(f.rows_per_minute, count(available ? task.rows_per_minute_now || 0 : undefined));
    const rows = task.rows || {};
    setText(f.published, count(rows.published));
    setText(f.filtered, count(rows.filtered));
    setText(f.rejected, count(rows.rejected));
    f.rejected.disabled = !available;
    setText(f.duplicates, count(available ? rows.duplicates || 0 : undefined));
    const latency = task.api_latency_ms || {};
    setText(f.api_p50, millis(latency.p50));
    setText(f.api_p95, millis(latency.p95));
    setText(f.last_update, localTime(task.last_update));
    setText(f.last_success_at, task.last_success_at ? when(task.last_success_at) : "—");
    setHidden(f["success-line"], !available);
    setText(f.next_run_at, task.next_run_at ? upcoming(task.next_run_at) : "");
    setHidden(f["next-line"], !task.next_run_at);
    renderError(card, task, available);
    renderResolved(card, task, available);
    const anomalies = available ? task.cursor_anomalies || 0 : 0;
    const anomaly = splitTimed(task.last_anomaly);
    setHidden(f["anomaly-line"], !anomalies);
    setText(f.cursor_anomalies, count(anomalies));
    setText(f.last_anomaly, (anomaly.at ? when(anomaly.at) + " " : "") + anomaly.text);
    const resets = available ? task.source_resets || 0 : 0;
    setHidden(f["reset-line"], !resets);
    setText(f.source_resets, count(resets));
    setText(f.last_reset_at, task.last_reset_at ? when(task.last_reset_at) : "—");
    setHidden(f.notes, !anomalies && !resets);
    card.buttons.start.disabled = card.busy || !available;
    card.buttons.stop.disabled = card.busy || !available || state === "stopped";
    names.set(task.task_id, card.name + (unnamed(task) ? " " + String(task.task_id).slice(0, 8) : ""));
    return card;
  }

  // Which cards show, and in what order: the filter, the state chip and the sort.
  function arrange() {
    const ordered = [...cards.values()].filter((card) => card.seen);
    const rank = (card) => STATE_RANK[card.root.dataset.status === "unavailable" ? "unavailable" : card.state] ?? 9;
    if (view.sort === "problems") {
      ordered.sort((a, b) => (a.state === "error" ? 0 : 1) - (b.state === "error" ? 0 : 1) || a.index - b.index);
    } else if (view.sort === "state") {
      ordered.sort((a, b) => rank(a) - rank(b) || a.index - b.index);
    } else if (view.sort === "name") {
      ordered.sort((a, b) => collator.compare(a.name, b.name) || a.index - b.index);
    } else {
      ordered.sort((a, b) => a.index - b.index);
    }
    const needle = view.text.trim().toLowerCase();
    let visible = 0;
    for (const card of ordered) {
      const match = (view.state === "all" || card.state === view.state) && (!needle || card.search.includes(needle));
      setHidden(card.root, !match);
      if (match) visible += 1;
    }
    const container = $("tasks");
    ordered.forEach((card, position) => {
      if (container.children[position] !== card.root) {
        container.insertBefore(card.root, container.children[position] || null);
      }
    });
    setText($("tasks-shown"), visible === ordered.length ? "共 " + ordered.length + " 个" : "显示 " + visible + " / " + ordered.length + " 个");
    setHidden($("tasks-empty"), visible > 0 || ordered.length === 0);
  }

  function renderChips() {
    const tallies = { all: 0 };
    for (const card of cards.values()) {
      if (!card.seen) continue;
      tallies.all += 1;
      tallies[card.state] = (tallies[card.state] || 0) + 1;
    }
    const container = $("state-filter");
    if (!container.children.length) {
      for (const [key, label] of STATE_CHIPS) {
        const chip = document.createElement("button");
        chip.type = "button";
        chip.className = "chip chip-" + key;
        chip.dataset.state = key;
        chip.dataset.label = label;
        chip.addEventListener("click", () => {
          view.state = view.state === key ? "all" : key;
          renderChips();
          arrange();
        });
        container.append(chip);
      }
    }
    for (const chip of container.children) {
      const key = chip.dataset.state;
      setText(chip, chip.dataset.label + " " + (tallies[key] || 0));
      chip.setAttribute("aria-pressed", String(view.state === key));
      setHidden(chip, key !== "all" && key !== view.state && !tallies[key]);
    }
  }

  function render(data, at) {
    lastStatus = data;
    const tasks = tasksOf(data);
    for (const card of cards.values()) card.seen = false;
    tasks.forEach((task, index) => {
      const card = renderTask(task, index);
      card.seen = true;
      if (task.status !== "unavailable") {
        append(series, task.task_id, [at, task.rows_per_minute_now || 0]);
      }
    });
    for (const [taskId, card] of cards) {
      if (!card.seen) {
        card.root.remove();
        cards.delete(taskId);
        series.delete(taskId);
      }
    }
    $("tasks").classList.toggle("tasks-many", tasks.length > MANY_TASKS);
    renderChips();
    arrange();
    fillTaskChoices(tasks);
    // The listing and a single task's status both carry the default group's lag.
    const lag = data.kafka_lag;
    if (typeof lag === "number") lagSeries = trim(lagSeries.concat([[at, lag]]), at);
    const speed = tasks.reduce((sum, t) => sum + (t.status !== "unavailable" ? t.rows_per_minute_now || 0 : 0), 0);
    setText($("sum-rows-per-minute"), count(speed));
    setText($("sum-kafka-lag"), count(lag));
    const group = data.kafka && data.kafka.consumer_group;
    setText($("sum-kafka-lag-label"), "job_data 积压（" + (group || "默认消费组") + "，条）");
    const running = tasks.filter((t) => t.status === "running").length;
    const failing = tasks.filter((t) => t.status === "error" || t.status === "unavailable").length;
    let summary = tasks.length + " 个";
    if (running) summary += " · " + running + " 运行中";
    if (failing) summary += " · " + failing + " 出错";
    setText($("sum-tasks"), summary);
    $("demo-badge").hidden = !data.demo;
    kafkaIndicator(data);
    renderBanners();
    drawChart(at);
  }

  // -- Kafka: the indicator and the consumer groups -------------------------------------------

  function kafkaIndicator(data) {
    const element = $("kafka-state");
    if (data.kafka_reachable === false) {
      element.className = "dot dot-bad";
      setText(element, "Kafka 不可达");
    } else if (data.kafka_reachable === true) {
      element.className = "dot dot-ok";
      setText(element, "Kafka 正常");
    } else {
      element.className = "dot dot-wait";
      setText(element, "Kafka 未知");
    }
  }

  function renderKafka(kafka) {
    lastKafka = kafka;
    const partitions = Object.keys(kafka.end_offsets || {}).sort((a, b) => Number(a) - Number(b));
    const ends = partitions.map((p) => "分区 " + p + "：" + count(kafka.end_offsets[p]));
    setText(
      $("kafka-ends"),
      (kafka.embedded ? "内置 broker（只在内存中）· " : "") +
        (ends.length ? "末尾偏移量 " + ends.join("，") : "")
    );
    const problem = kafka.error
      ? (kafka.reachable === false ? "Kafka 不可达，无法测量积压。" : "无法测量积压：") + (kafka.reachable === false ? "" : kafka.error)
      : "";
    setText($("kafka-error"), problem);
    setHidden($("kafka-error"), !problem);
    const head = document.createElement("tr");
    for (const label of ["消费组", "积压（条）", ...partitions.map((p) => "分区 " + p)]) {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = label;
      head.append(th);
    }
    const rows = (kafka.groups || []).map((group) => {
      const tr = document.createElement("tr");
      tr.dataset.group = group.group;
      const name = document.createElement("th");
      name.scope = "row";
      name.textContent = group.group;
      if (group.default) {
        const tag = document.createElement("span");
        tag.className = "badge badge-idle";
        tag.textContent = "默认（/consume）";
        name.append(" ", tag);
      }
      const total = document.createElement("td");
      total.textContent = group.error ? "—（" + group.error + "）" : count(group.lag);
      tr.append(name, total);
      for (const p of partitions) {
        const td = document.createElement("td");
        td.textContent = count((group.lag_by_partition || {})[p]);
        tr.append(td);
      }
      return tr;
    });
    const signature = [head, ...rows].map((r) => r.textContent).join("\u0001");
    const table = $("groups");
    if (table.dataset.signature !== signature) {
      table.dataset.signature = signature;
      $("groups-head").replaceWith(head);
      head.id = "groups-head";
      $("groups-body").replaceChildren(...rows);
    }
    setHidden($("groups-box"), !rows.length);
    renderBanners();
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

  // An axis of whole numbers: four steps of 1, 2 or 5 times a power of ten.
  function scale(value) {
    const step0 = Math.max(1, value / 4);
    const power = Math.pow(10, Math.floor(Math.log10(step0)));
    let step = 10 * power;
    for (const m of [1, 2, 5, 10]) {
      if (step0 <= m * power) {
        step = m * power;
        break;
      }
    }
    return { max: step * 4, step: step };
  }

  // The tasks' lines: each task's with up to MAX_LINES tasks, else their sum.
  function lines() {
    const shown = [...cards.entries()].filter(([, card]) => card.seen);
    if (shown.length <= MAX_LINES) {
      return shown.map(([taskId, card]) => ({
        key: "task:" + taskId,
        label: names.get(taskId) || taskId,
        color: card.color,
        points: series.get(taskId) || [],
      }));
    }
    // Summed on a 5-second grid: the tasks' points do not fall at the same instants.
    const sums = new Map();
    for (const [taskId] of shown) {
      const bucketed = new Map();
      for (const p of series.get(taskId) || []) bucketed.set(Math.round(p[0] / 5) * 5, p[1]);
      for (const [t, v] of bucketed) sums.set(t, (sums.get(t) || 0) + v);
    }
    const points = [...sums.entries()].sort((a, b) => a[0] - b[0]);
    return [{ key: "sum", label: "全部 " + shown.length + " 个任务合计", color: SUM_COLOR, points: points }];
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

    const drawn = lines();
    const pad = { left: 56, right: 56, top: 22, bottom: 24 };
    const plotW = Math.max(10, width - pad.left - pad.right);
    const plotH = Math.max(10, height - pad.top - pad.bottom);
    // Up to the last hour: the span of the data there is, at least five minutes.
    let oldest = now;
    for (const line of drawn) if (line.points.length) oldest = Math.min(oldest, line.points[0][0]);
    if (lagSeries.length) oldest = Math.min(oldest, lagSeries[0][0]);
    const span = Math.min(settings.history_seconds, Math.max(300, now - oldest));
    const start = now - span;
    const x = (t) => pad.left + ((t - start) / span) * plotW;
    const minutes = Math.round(span / 60);
    const title = (minutes >= 60 ? "近一小时" : "近 " + minutes + " 分钟") + "的处理速度与积压";
    setText($("chart-title"), title);

    let rowsMax = 0;
    let points = 0;
    for (const line of drawn) {
      for (const p of line.points) {
        if (p[0] >= start) {
          rowsMax = Math.max(rowsMax, p[1]);
          points += 1;
        }
      }
    }
    let lagMax = 0;
    for (const p of lagSeries) if (p[0] >= start) lagMax = Math.max(lagMax, p[1]);
    const rows = scale(rowsMax);
    const lag = scale(lagMax);
    // What the chart shows, for those who cannot see it (and the tests): its span and scales.
    const described =
      title + "：左轴处理速度 0–" + integer.format(rows.max) + " 行/分钟，右轴积压 0–" + integer.format(lag.max) + " 条";
    if (canvas.getAttribute("aria-label") !== described) canvas.setAttribute("aria-label", described);
    const yRows = (v) => pad.top + plotH - (v / rows.max) * plotH;
    const yLag = (v) => pad.top + plotH - (v / lag.max) * plotH;

    // Grid and the two scales: rows per minute on the left, lag on the right.
    ctx.strokeStyle = "#e5e7eb";
    ctx.lineWidth = 1;
    ctx.textBaseline = "middle";
    for (let i = 0; i <= 4; i += 1) {
      const y = pad.top + plotH - (plotH * i) / 4;
      ctx.beginPath();
      ctx.moveTo(pad.left, y);
      ctx.lineTo(pad.left + plotW, y);
      ctx.stroke();
      ctx.fillStyle = "#4b5563";
      ctx.textAlign = "right";
      ctx.fillText(compact(rows.step * i), pad.left - 6, y);
      ctx.fillStyle = LAG_COLOR;
      ctx.textAlign = "left";
      ctx.fillText(compact(lag.step * i), pad.left + plotW + 6, y);
    }
    ctx.textBaseline = "top";
    ctx.fillStyle = "#4b5563";
    ctx.textAlign = "left";
    ctx.fillText("行/分钟", 4, 2);
    ctx.fillStyle = LAG_COLOR;
    ctx.textAlign = "right";
    ctx.fillText("积压（条）", width - 4, 2);
    ctx.fillStyle = "#4b5563";
    ctx.textAlign = "center";
    const step = [1, 2, 5, 10, 15, 20, 30].find((m) => span / 60 / m <= 6) || 60;
    for (let m = Math.floor(span / 60 / step) * step; m >= 0; m -= step) {
      const t = now - m * 60;
      const label = m === 0 ? "现在" : "-" + m + " 分";
      ctx.fillText(label, Math.max(pad.left + 12, Math.min(x(t), pad.left + plotW - 12)), pad.top + plotH + 6);
    }

    // A gap of more than a minute between two points is drawn as a gap.
    const draw = (pts, y, color, dashed) => {
      ctx.strokeStyle = color;
      ctx.lineWidth = 2;
      ctx.setLineDash(dashed ? [5, 4] : []);
      ctx.beginPath();
      let previous = null;
      for (const p of pts) {
        if (p[0] < start) continue;
        if (previous === null || p[0] - previous > 60) ctx.moveTo(x(p[0]), y(p[1]));
        else ctx.lineTo(x(p[0]), y(p[1]));
        previous = p[0];
      }
      ctx.stroke();
      ctx.setLineDash([]);
    };
    for (const line of drawn) draw(line.points, yRows, line.color, false);
    draw(lagSeries, yLag, LAG_COLOR, true);
    if (!points && !lagSeries.length) {
      ctx.fillStyle = "#6b7280";
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.fillText("暂无数据", pad.left + plotW / 2, pad.top + plotH / 2);
    }
    setText(
      $("chart-note"),
      "处理速度：每个任务近 10 秒处理的源行数折算为每分钟，每 5 秒一个点；积压：默认消费组在 job_data 上未读的消息数。" +
        (drawn.length === 1 && drawn[0].key === "sum" ? "任务较多，画出的是所有任务之和。" : "")
    );
    drawLegend(drawn);
  }

  function compact(value) {
    if (value >= 1e6) return decimal.format(value / 1e6) + "M";
    if (value >= 1e4) return decimal.format(value / 1e3) + "k";
    return integer.format(value);
  }

  function drawLegend(drawn) {
    const legend = $("legend");
    const group = lastStatus && lastStatus.kafka ? lastStatus.kafka.consumer_group : "默认消费组";
    const items = drawn.map((line) => ({ key: line.key, label: line.label + "（行/分钟）", color: line.color }));
    items.push({ key: "lag", label: group + " 积压（右轴，虚线）", color: LAG_COLOR, dashed: true });
    const signature = items.map((i) => i.key + "\u0000" + i.label + "\u0000" + i.color).join("\u0001");
    if (legend.dataset.signature === signature) return;
    legend.dataset.signature = signature;
    legend.replaceChildren(
      ...items.map((item) => {
        const li = document.createElement("li");
        const swatch = document.createElement("span");
        swatch.className = item.dashed ? "swatch swatch-dashed" : "swatch";
        swatch.style.setProperty("--swatch", item.color);
        li.append(swatch, document.createTextNode(item.label));
        return li;
      })
    );
  }

  // -- recent messages ------------------------------------------------------------------------

  function fillTaskChoices(tasks) {
    const select = $("messages-task");
    const signature = tasks.map((t) => t.task_id + "\u0000" + (names.get(t.task_id) || "")).join("\u0001");
    if (select.dataset.signature === signature) return;
    select.dataset.signature = signature;
    const chosen = select.value;
    const options = [new Option("全部任务", "")];
    for (const task of tasks) options.push(new Option(names.get(task.task_id) || task.task_id, task.task_id));
    select.replaceChildren(...options);
    if (tasks.some((t) => t.task_id === chosen)) select.value = chosen;
  }

  function openMessages(topic, taskId) {
    viewer.topic = topic;
    const select = $("messages-task");
    if (taskId !== undefined) {
      if (![...select.options].some((o) => o.value === taskId)) select.append(new Option(taskId, taskId));
      select.value = taskId;
    }
    const panel = $("messages-panel");
    panel.open = true;
    loadMessages();
    panel.scrollIntoView({ block: "start" });
  }

  function cell(value, className) {
    const td = document.createElement("td");
    if (className) td.className = className;
    td.textContent = text(value);
    return td;
  }

  function messageRow(message, topic) {
    const tr = document.createElement("tr");
    const value = message.value && typeof message.value === "object" ? message.value : null;
    const taskId = value ? value.task_id : message.key ? String(message.key).split(":")[0] : "";
    const task = names.get(taskId) || taskId;
    const time = message.timestamp ? localTime(message.timestamp) : "—";
    const place = message.partition + ":" + message.offset;
    if (topic === "rejects") {
      const row = value && value.row !== null && value.row !== undefined ? JSON.stringify(value.row) : value ? value.row_excerpt : message.excerpt;
      tr.append(
        cell(time),
        cell(task),
        cell(value ? value.source_offset : ""),
        cell(value ? value.field : ""),
        cell(value ? value.reason : "（消息过大或不是 JSON，只显示开头）", "reason"),
        cell(row ? String(row).slice(0, 200) : "", "raw")
      );
    } else {
      tr.append(
        cell(time),
        cell(task),
        cell(value ? value.job_title : message.excerpt.slice(0, 120) + "…（过大，只显示开头）"),
        cell(value ? value.company : ""),
        cell(value ? value.location : ""),
        cell(value ? value.salary : ""),
        cell(value ? value.publish_date : ""),
        cell(place, "mono")
      );
    }
    return tr;
  }

  async function loadMessages() {
    const topic = viewer.topic;
    for (const chip of document.querySelectorAll("#messages-panel [data-topic]")) {
      chip.setAttribute("aria-pressed", String(chip.dataset.topic === topic));
    }
    const taskId = $("messages-task").value;
    const limit = $("messages-limit").value;
    const heads =
      topic === "rejects"
        ? ["时间", "任务", "源 offset", "字段", "原因", "原始数据（开头）"]
        : ["时间", "任务", "职位", "公司", "地点", "薪资", "发布日期", "分区:offset"];
    const head = document.createElement("tr");
    head.id = "messages-head";
    for (const label of heads) {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = label;
      head.append(th);
    }
    $("messages-head").replaceWith(head);
    $("messages-body").replaceChildren();
    setText($("messages-state"), "读取中…");
    const query = "?topic=" + topic + "&limit=" + encodeURIComponent(limit) + (taskId ? "&task_id=" + encodeURIComponent(taskId) : "");
    try {
      const data = dataOf(await read("/messages/recent" + query));
      if (viewer.topic !== topic) return;
      $("messages-body").replaceChildren(...data.messages.map((m) => messageRow(m, topic)));
      let state = data.topic + "：最新的 " + data.messages.length + " 条" + (taskId ? "（" + (names.get(taskId) || taskId) + "）" : "");
      state += "，新的在前；读取了 " + count(data.scanned) + " 条。";
      if (!data.messages.length) state = data.topic + " 中" + (taskId ? "该任务" : "") + "没有消息" + (data.complete ? "。" : "（只看了最近的 " + count(data.scanned) + " 条）。");
      else if (taskId && data.messages.length < data.limit && !data.complete) state += "只看了每个分区最近的一部分。";
      setText($("messages-state"), state);
      viewer.loaded = true;
    } catch (error) {
      setText($("messages-state"), "读取失败：" + (error instanceof AuthNeeded ? "需要读取令牌" : String(error.message || error)));
    }
  }

  // -- polling --------------------------------------------------------------------------------

  function connection(ok, message) {
    const element = $("connection");
    element.className = "dot " + (ok ? "dot-ok" : "dot-bad");
    setText(element, message);
  }

  async function refresh() {
    try {
      const data = dataOf(await read("/status"));
      const at = Date.now() / 1000;
      failures = 0;
      connectionProblem = "";
      lastSuccess = Date.now();
      performance.mark("jobstream-render");
      render(data, at);
      performance.measure("jobstream-render", "jobstream-render");
      connection(true, "已连接");
      setText($("updated"), "更新于 " + timeOnly.format(new Date()));
    } catch (error) {
      failures += 1;
      const why = error instanceof AuthNeeded ? "需要读取令牌" : String(error.message || error);
      connectionProblem = "连接异常（" + why + "）";
      connection(false, connectionProblem + "，稍后重试");
      renderBanners();
      return;
    }
    try {
      renderKafka(dataOf(await read("/kafka")));
    } catch (error) {
      setText($("kafka-error"), "读取 /kafka 失败：" + (error instanceof AuthNeeded ? "需要读取令牌" : String(error.message || error)));
      setHidden($("kafka-error"), false);
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
      const data = dataOf(await read("/status/history"));
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
    $("task-filter").addEventListener("input", (e) => {
      view.text = e.currentTarget.value;
      arrange();
    });
    $("task-sort").addEventListener("change", (e) => {
      view.sort = e.currentTarget.value;
      arrange();
    });
    $("messages-panel").addEventListener("toggle", (e) => {
      if (e.currentTarget.open && !viewer.loaded) loadMessages();
    });
    for (const chip of document.querySelectorAll("#messages-panel [data-topic]")) {
      chip.addEventListener("click", () => {
        viewer.topic = chip.dataset.topic;
        loadMessages();
      });
    }
    $("messages-load").addEventListener("click", loadMessages);
    $("messages-task").addEventListener("change", loadMessages);
    $("messages-limit").addEventListener("change", loadMessages);
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
