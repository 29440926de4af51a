// The operator console: talks to the JSON operator API (/v1/...) with the session cookie and
// listens to /v1/events for live updates. No framework, no build step; all text goes through
// textContent (never parsed as markup), so a customer's message cannot inject markup.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  conversations: [],
  selected: null, // conversation id
  view: "list", // "conversation" | "problems" on phones
  tab: "all", // "all" | "waiting" | "problems"
  inbox: { turns: [], dead_letters: [] },
  refreshTimer: null,
};

// ---- HTTP ---------------------------------------------------------------------------------

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) return meta.content;
  const m = document.cookie.match(/(?:^|;\s*)wagate_csrf=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : "";
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") {
    headers["X-Requested-With"] = "wagate-console";
    const token = csrfToken();
    if (token) headers["X-CSRF-Token"] = token;
  }
  const res = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 401) {
    // The session ended (signed out elsewhere, server restarted with a new token): the page
    // itself shows the login form again.
    window.location.reload();
    throw new Error("signed out");
  }
  let data = null;
  const text = await res.text();
  if (text) {
    try { data = JSON.parse(text); } catch (_) { data = { error: text }; }
  }
  if (!res.ok) {
    const reason = (data && (data.reason || data.error || data.message)) || res.statusText;
    const err = new Error(typeof reason === "string" ? reason : JSON.stringify(reason));
    err.status = res.status;
    throw err;
  }
  return data || {};
}

function showError(message) {
  const el = $("error");
  el.textContent = message;
  el.hidden = false;
  clearTimeout(showError.timer);
  showError.timer = setTimeout(() => { el.hidden = true; }, 6000);
}

// ---- Formatting ---------------------------------------------------------------------------

function toDate(v) {
  if (v === null || v === undefined || v === "") return null;
  if (typeof v === "number" || /^\d+$/.test(String(v))) {
    const n = Number(v);
    return new Date(n > 1e12 ? n : n * 1000);
  }
  // `wagate inbox`'s own format: 2025-01-31 14:05:09 UTC
  const utc = String(v).match(/^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d) UTC$/);
  const d = new Date(utc ? utc[1] + "T" + utc[2] + "Z" : v);
  return isNaN(d) ? null : d;
}

function clock(d) {
  if (!d) return "";
  const now = new Date();
  const hm = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  if (d.toDateString() === now.toDateString()) return hm;
  return d.toLocaleDateString([], { day: "numeric", month: "short" }) + " " + hm;
}

function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m";
  if (s < 86400) return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
  return Math.floor(s / 86400) + "d " + Math.floor((s % 86400) / 3600) + "h";
}

function displayName(c) {
  return c.contact_name || ("+" + c.user);
}

// When a conversation was handed to a person (the API's `handoff.since`), else its last message.
function waitingSince(c) {
  return toDate((c.handoff && c.handoff.since) || c.last_message_at);
}

function isHuman(c) {
  return c.state === "human";
}

// Handed to a person who has not answered yet.
function isWaiting(c) {
  return isHuman(c) && !(c.handoff && c.handoff.waiting === false);
}

function el(tag, props, children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === "text") node.textContent = v;
    else if (k === "class") node.className = v;
    else if (k.startsWith("aria-") || k === "title" || k === "datetime") node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const child of children || []) if (child) node.append(child);
  return node;
}

// ---- Conversation list ---------------------------------------------------------------------

async function loadList() {
  const data = await api("GET", "/v1/conversations");
  state.conversations = data.conversations || [];
  renderList();
  if (state.selected) renderHead();
}

function renderList() {
  setBadge("waiting-count", state.conversations.filter(isWaiting).length);
  let shown = state.conversations;
  if (state.tab === "waiting") {
    // The queue: every conversation with a person, who has waited longest first.
    // Those still waiting for a first answer come first.
    shown = state.conversations.filter(isHuman)
      .sort((a, b) => (isWaiting(b) - isWaiting(a)) || (waitingSince(a) || 0) - (waitingSince(b) || 0));
  }
  const list = $("conversations");
  // Re-rendering must not take the keyboard focus away from the conversation it was on.
  const focused = list.contains(document.activeElement) ? document.activeElement.dataset.id : null;
  list.replaceChildren();
  const now = Date.now();
  for (const c of shown) {
    const meta = el("span", { class: "c-meta" });
    if (isWaiting(c)) {
      const since = waitingSince(c);
      meta.append(el("span", { class: "pill human", text: "waiting for a person" }));
      if (since) meta.append(el("span", { class: "wait", text: "for " + duration((now - since) / 1000) }));
    } else if (isHuman(c)) {
      meta.append(el("span", { class: "pill human", text: "with a person" }));
    } else {
      meta.append(el("span", { class: "pill", text: "agent" }));
    }
    if (c.opted_out) meta.append(el("span", { class: "pill optout", text: "opted out" }));
    if (c.contact_name) meta.append(el("span", { text: "+" + c.user }));
    const last = toDate(c.last_message_at);
    const button = el("button", { type: "button", "aria-current": String(c.id === state.selected) }, [
      el("span", { class: "c-name", text: displayName(c) }),
      el("time", { class: "c-time", text: clock(last), datetime: last ? last.toISOString() : "" }),
      meta,
    ]);
    button.dataset.id = c.id;
    button.addEventListener("click", () => openConversation(c.id));
    list.append(el("li", {}, [button]));
    if (c.id === focused) button.focus();
  }
  const empty = $("list-empty");
  empty.hidden = shown.length > 0;
  empty.textContent = state.tab === "waiting" ? "Nobody is waiting for a person." : "No conversations yet.";
}

function setBadge(id, n) {
  const b = $(id);
  b.textContent = String(n);
  b.classList.toggle("zero", n === 0);
}

function setTab(tab) {
  state.tab = tab;
  for (const t of ["all", "waiting", "problems"]) $("tab-" + t).setAttribute("aria-pressed", String(t === tab));
  if (tab === "problems") {
    showProblems();
  } else {
    renderList();
  }
}

// ---- One conversation ----------------------------------------------------------------------

function selectedConversation() {
  return state.conversations.find((c) => c.id === state.selected) || null;
}

async function openConversation(id) {
  state.selected = id;
  history.replaceState(null, "", "#conversation=" + encodeURIComponent(id));
  $("conv-none").hidden = true;
  $("problems").hidden = true;
  $("conv-open").hidden = false;
  document.body.classList.add("show-main");
  renderList();
  renderHead();
  $("messages").replaceChildren();
  renderMessages.key = null;
  await loadMessages();
  $("conversation").focus();
}

function renderHead() {
  const c = selectedConversation();
  if (!c) return;
  $("conv-title").textContent = displayName(c);
  $("conv-sub").replaceChildren(
    el("span", { text: "+" + c.user }),
    el("span", { class: "biz", text: " · to business number " + c.phone_number_id }),
  );
  const human = c.state === "human";
  let said = human ? "With a person" : "The agent is answering";
  if (human && c.handoff) {
    const why = c.handoff.reason || TRIGGERS[c.handoff.trigger];
    if (why) said += ": " + why;
  }
  $("conv-state").textContent = said;
  $("conv-state").className = "state pill" + (human ? " human" : "");
  $("takeover").hidden = human;
  $("handback").hidden = !human;
  $("reply-note").textContent = human ? "" : "Sending a reply does not stop the agent: take over first to keep it silent.";
  if (c.opted_out) {
    // Nothing reaches the customer until they send a resume keyword (the API answers 409).
    $("conv-state").textContent = said + " · the customer opted out";
    $("reply-note").textContent = "The customer opted out: nothing is sent to them until they write a resume keyword.";
  }
}

async function loadMessages() {
  const id = state.selected;
  if (!id) return;
  const data = await api("GET", "/v1/conversations/" + encodeURIComponent(id) + "/messages");
  if (id !== state.selected) return; // another conversation was opened meanwhile
  renderMessages(data.messages || []);
}

// Why a conversation went to a person, when the agent gave no reason.
const TRIGGERS = {
  keyword: "the customer asked for a person",
  tool: "the agent handed it over",
};

const TICKS = {
  accepted: ["✓", "sent"],
  sent: ["✓", "sent"],
  delivered: ["✓✓", "delivered"],
  read: ["✓✓", "read"],
  played: ["✓✓", "played"],
  failed: ["✗ failed", "failed"],
  not_sent: ["✗ not sent", "not sent"],
  held: ["⏸ held", "held: the customer's last message is over 24 hours old; it goes out when they write again"],
  pending: ["…", "waiting to be sent"],
};

function renderMessages(messages) {
  // Unchanged (an event about another conversation): keep the DOM, the scroll and the focus.
  const key = state.selected + "\n" + JSON.stringify(messages);
  if (key === renderMessages.key) return;
  const sameConversation = renderMessages.key && renderMessages.key.startsWith(state.selected + "\n");
  const before = sameConversation ? renderMessages.count : messages.length;
  renderMessages.key = key;
  renderMessages.count = messages.length;
  // Screen readers hear about new customer messages, not the whole list again.
  const fresh = messages.slice(before).filter((m) => m.direction === "in");
  if (fresh.length) {
    const c = selectedConversation();
    $("announce").textContent = "New message from " + (c ? displayName(c) : "the customer") + ": " + (fresh[fresh.length - 1].text || "");
  }
  const box = $("messages");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  box.replaceChildren();
  for (const m of messages) {
    const author = m.author || (m.direction === "in" ? "customer" : "agent");
    const at = toDate(m.at);
    const meta = el("span", { class: "msg-meta" }, [
      el("span", { class: "author", text: author }),
      el("time", { text: clock(at), datetime: at ? at.toISOString() : "" }),
    ]);
    if (m.direction === "out") {
      const status = m.status || "pending";
      const [mark, known] = TICKS[status] || ["…", status];
      // Why a part was not sent (outside_24h_window, a Graph error) is worth the hover.
      const label = m.error ? known + ": " + m.error : known;
      const bad = status === "failed" || status === "not_sent";
      meta.append(
        el("span", { class: "tick " + (bad ? "failed" : status), title: label, "aria-hidden": "true", text: mark }),
        el("span", { class: "visually-hidden", text: label }),
      );
      // The customer's reaction to this message (WhatsApp shows it under the bubble).
      if (m.reaction) meta.append(el("span", { class: "reaction", title: "the customer's reaction", text: m.reaction }));
    }
    let text = m.text;
    if (text === null || text === undefined || text === "") text = "[" + (m.type || "message") + "]";
    // A tapped button or list row: its id too (the title is what the customer saw).
    if (m.reply_id) text += " (" + m.reply_id + ")";
    const item = el("li", { class: "msg " + (m.direction === "out" ? "out" : "in") + " " + author }, [
      el("div", { class: "msg-text", text }),
      meta,
    ]);
    item.dataset.author = author;
    if (m.status) item.dataset.status = m.status;
    box.append(item);
  }
  if (atBottom || !sameConversation) box.scrollTop = box.scrollHeight;
}

async function changeState(action) {
  const id = state.selected;
  try {
    await api("POST", "/v1/conversations/" + encodeURIComponent(id) + "/" + action);
    await loadList();
    // The pressed button is hidden now: keep the keyboard focus on its counterpart.
    $(action === "handoff" ? "handback" : "takeover").focus();
  } catch (e) {
    showError("Could not " + (action === "handoff" ? "take over" : "hand back") + ": " + e.message);
  }
}

async function sendReply(event) {
  event.preventDefault();
  const box = $("reply-text");
  const text = box.value.trim();
  if (!text || !state.selected) return;
  $("send").disabled = true;
  try {
    const sent = await api("POST", "/v1/conversations/" + encodeURIComponent(state.selected) + "/messages", { text });
    box.value = "";
    $("reply-note").textContent = sent && sent.held
      ? "Held: the customer's last message is over 24 hours old. The reopen template was sent; your reply goes out when they write."
      : "Sent to the outbound queue.";
    await loadMessages();
  } catch (e) {
    $("reply-note").textContent = (e.status === 409 ? "Not sent: " : "Could not send: ") + e.message;
  } finally {
    $("send").disabled = false;
  }
}

// ---- Failed turns and dead letters ---------------------------------------------------------

async function loadInbox() {
  try {
    const data = await api("GET", "/v1/inbox");
    state.inbox = { turns: data.failed_turns || [], dead_letters: data.dead_letters || [] };
  } catch (e) {
    return; // shown when the operator opens the tab
  }
  setBadge("problems-count", state.inbox.turns.length);
  if (state.tab === "problems") renderProblems();
}

function showProblems() {
  state.selected = null;
  history.replaceState(null, "", "#problems");
  $("conv-none").hidden = true;
  $("conv-open").hidden = true;
  $("problems").hidden = false;
  document.body.classList.add("show-main");
  renderList();
  renderProblems();
  loadInbox();
}

function renderProblems() {
  const turns = $("turns");
  turns.replaceChildren();
  for (const t of state.inbox.turns) {
    const button = el("button", { type: "button", text: "Retry", "aria-label": "Retry turn " + t.id });
    button.addEventListener("click", () => retryTurn(t.id, button));
    const c = state.conversations.find((c) => c.user === t.user && c.phone_number_id === t.phone_number_id);
    const who = c ? displayName(c) : "+" + t.user;
    const actions = el("div", { class: "actions" }, [button]);
    if (c) {
      const open = el("button", { type: "button", class: "secondary", text: "Open conversation", "aria-label": "Open the conversation with " + who });
      open.addEventListener("click", () => { setTab("all"); openConversation(c.id); });
      actions.prepend(open);
    }
    turns.append(el("li", { class: "card" }, [
      el("div", { class: "grow" }, [
        el("strong", { text: "Turn " + t.id + " · " + who }),
        el("div", { class: "muted", text: (t.messages || 0) + " message(s), " + (t.attempts || 0) + " attempt(s), " + clock(toDate(t.started_at)) }),
        el("div", { class: "error", text: t.error || "no reason recorded" }),
      ]),
      actions,
    ]));
  }
  $("turns-empty").hidden = state.inbox.turns.length > 0;
  const dead = $("dead");
  dead.replaceChildren();
  for (const d of state.inbox.dead_letters) {
    const button = el("button", { type: "button", text: "Retry", "aria-label": "Retry dead letter " + d.id });
    button.addEventListener("click", () => retryDeadLetter(d.id, button));
    dead.append(el("li", { class: "card" }, [
      el("div", { class: "grow" }, [
        el("strong", { text: "#" + d.id + " · " + clock(toDate(d.received_at)) }),
        el("div", { class: "error", text: d.reason }),
      ]),
      el("div", { class: "actions" }, [button]),
    ]));
  }
  $("dead-empty").hidden = state.inbox.dead_letters.length > 0;
}

async function retryTurn(id, button) {
  button.disabled = true;
  try {
    const r = await api("POST", "/v1/turns/" + encodeURIComponent(id) + "/retry");
    showNote("Turn " + id + " re-queued: " + (r.messages || 0) + " message(s) will be answered again.");
    await loadInbox();
  } catch (e) {
    button.disabled = false;
    showError("Could not retry turn " + id + ": " + e.message);
  }
}

// A dead letter is recorded again as a webhook would be: what wagate understands of it now
// (after an upgrade or a config change) is answered; what it still does not stays listed.
async function retryDeadLetter(id, button) {
  button.disabled = true;
  try {
    const r = await api("POST", "/v1/dead-letters/" + encodeURIComponent(id) + "/retry");
    showNote(r.still_dead
      ? "Dead letter " + id + " retried: still not understood, kept with today's reason."
      : "Dead letter " + id + " retried: " + (r.recorded || 0) + " message(s) recorded.");
    await loadInbox();
  } catch (e) {
    button.disabled = false;
    showError("Could not retry dead letter " + id + ": " + e.message);
  }
}

function showNote(text) {
  $("live").textContent = text;
}

// ---- Live updates ---------------------------------------------------------------------------

function scheduleRefresh() {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(async () => {
    try {
      await loadList();
      await loadMessages();
    } catch (e) {
      showError(e.message);
    }
  }, 100);
}

function connectEvents() {
  const events = new EventSource("/v1/events");
  events.onopen = () => {
    $("live").textContent = "Live";
    scheduleRefresh(); // catch up on what happened while disconnected
  };
  events.onerror = () => {
    $("live").textContent = "Reconnecting…";
    // The browser retries a dropped connection by itself, but gives up on an error answer
    // (a 401 after the token changed, a proxy's 502): then try again here. A 401 on the
    // refresh shows the login form.
    if (events.readyState === EventSource.CLOSED) {
      setTimeout(() => { scheduleRefresh(); connectEvents(); }, 5000);
    }
  };
  for (const kind of ["message", "status", "conversation"]) {
    events.addEventListener(kind, scheduleRefresh);
  }
}

// ---- Start ----------------------------------------------------------------------------------

function back() {
  document.body.classList.remove("show-main");
  if (state.tab === "problems") setTab("all");
}

function start() {
  $("tab-all").addEventListener("click", () => setTab("all"));
  $("tab-waiting").addEventListener("click", () => setTab("waiting"));
  $("tab-problems").addEventListener("click", () => setTab("problems"));
  $("takeover").addEventListener("click", () => changeState("handoff"));
  $("handback").addEventListener("click", () => changeState("release"));
  $("reply").addEventListener("submit", sendReply);
  $("reply-text").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) $("reply").requestSubmit();
  });
  $("back").addEventListener("click", back);
  $("back-problems").addEventListener("click", back);
  // Waiting times tick on their own; the failed-turn count is polled (turns fail without an event).
  setInterval(renderList, 15000);
  setInterval(loadInbox, 30000);

  // A link to `/console/#conversation=<id>` (the handoff notification's) opens that conversation, also
  // when the console is already open.
  window.addEventListener("hashchange", route);

  connectEvents();
  loadList().then(route).catch((e) => showError(e.message));
  loadInbox();
}

function route() {
  const hash = decodeURIComponent(location.hash.slice(1));
  if (hash === "problems") return setTab("problems");
  const id = hash.replace(/^(conversation|c)=/, "");
  if (id !== hash && id && id !== state.selected) openConversation(id);
}

document.addEventListener("DOMContentLoaded", start);
