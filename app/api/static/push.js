// "Notify this browser" (SPEC §11), the only script the pages load: registers the
// service worker (/sw.js), subscribes with the site's VAPID key (GET /api/v1/push/key)
// and sends the subscription to POST /api/v1/subscriptions. The manage token of the
// answer is kept in this browser (localStorage, one per push endpoint), so its
// subscriptions can be listed, paused and removed from here later (/api/v1/push/me).
"use strict";

(function () {
  // {endpoint: manage token}: a browser has one endpoint per site until it renews its
  // push subscription; the newest token of an endpoint opens all of its subscriptions.
  const STORE = "chess-helper-push-manage";

  function keyBytes(base64url) {
    const padded = (base64url + "===".slice((base64url.length + 3) % 4))
      .replace(/-/g, "+")
      .replace(/_/g, "/");
    const raw = atob(padded);
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i += 1) bytes[i] = raw.charCodeAt(i);
    return bytes;
  }

  function sameKey(subscription, key) {
    const current = subscription.options && subscription.options.applicationServerKey;
    if (!current) return true;
    const a = new Uint8Array(current);
    return a.length === key.length && a.every((byte, i) => byte === key[i]);
  }

  function stored() {
    try {
      const tokens = JSON.parse(localStorage.getItem(STORE) || "{}");
      return tokens && typeof tokens === "object" && !Array.isArray(tokens) ? tokens : {};
    } catch (error) {
      return {};
    }
  }

  function remember(endpoint, token) {
    if (!endpoint || !token) return;
    const tokens = stored();
    tokens[endpoint] = token;
    localStorage.setItem(STORE, JSON.stringify(tokens));
  }

  function forget(endpoint) {
    const tokens = stored();
    delete tokens[endpoint];
    localStorage.setItem(STORE, JSON.stringify(tokens));
  }

  function manage(method, path, token, body) {
    const headers = { Authorization: "Bearer " + token, Accept: "application/json" };
    if (body) headers["Content-Type"] = "application/json";
    return fetch("/api/v1/push/me" + path, {
      method: method,
      headers: headers,
      body: body ? JSON.stringify(body) : undefined,
      credentials: "omit",
    });
  }

  async function browserSubscription() {
    const registration = await navigator.serviceWorker.register("/sw.js", { scope: "/" });
    await navigator.serviceWorker.ready;
    const answer = await fetch("/api/v1/push/key", { headers: { Accept: "application/json" } });
    if (!answer.ok) throw new Error("the site has no push key");
    const key = keyBytes((await answer.json()).public_key);
    let subscription = await registration.pushManager.getSubscription();
    if (subscription && !sameKey(subscription, key)) {
      await subscription.unsubscribe();
      subscription = null;
    }
    if (!subscription) {
      subscription = await registration.pushManager.subscribe({
        userVisibleOnly: true,
        applicationServerKey: key,
      });
    }
    const json = subscription.toJSON();
    return { endpoint: json.endpoint, keys: { p256dh: json.keys.p256dh, auth: json.keys.auth } };
  }

  // -- this browser's subscriptions: listed with a pause/resume and a remove button ------

  async function mine() {
    const found = [];
    for (const [endpoint, token] of Object.entries(stored())) {
      const answer = await manage("GET", "", token);
      if (answer.status === 401) {
        forget(endpoint); // erased, or from another installation: nothing to show
        continue;
      }
      if (!answer.ok) continue;
      for (const sub of (await answer.json()).subscriptions) {
        if (sub.active) found.push({ sub: sub, token: token });
      }
    }
    return found;
  }

  function button(label, name, action) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "secondary";
    b.textContent = label;
    b.setAttribute("aria-label", label + " alerts about " + name);
    b.addEventListener("click", () => {
      b.disabled = true;
      action().finally(refreshAll);
    });
    return b;
  }

  function item(entry) {
    const sub = entry.sub;
    const li = document.createElement("li");
    li.dataset.subscription = String(sub.id);
    const name = document.createElement("span");
    name.textContent = sub.username + (sub.paused ? " (paused)" : "");
    li.append(name, " ");
    li.append(
      button(sub.paused ? "Resume" : "Pause", sub.username, () =>
        manage("PATCH", "/subscriptions/" + sub.id, entry.token, { paused: !sub.paused })
      ),
      " ",
      button("Remove", sub.username, () =>
        manage("DELETE", "/subscriptions/" + sub.id, entry.token)
      )
    );
    return li;
  }

  async function show(box) {
    const list = box.querySelector("[data-push-list]");
    if (!list) return;
    const entries = await mine();
    list.replaceChildren(...entries.map(item));
    box.hidden = entries.length === 0;
  }

  function refreshAll() {
    const boxes = document.querySelectorAll("[data-push-manage]");
    return Promise.all(Array.from(boxes, (box) => show(box).catch(() => undefined)));
  }

  // -- "Notify this browser" --------------------------------------------------------------

  async function subscribe(button, status) {
    const field = button.dataset.usernameField && document.getElementById(button.dataset.usernameField);
    const username = (field ? field.value : button.dataset.username || "").trim();
    if (!username) {
      status.textContent = "Type a player's username first.";
      return;
    }
    if ((await Notification.requestPermission()) !== "granted") {
      status.textContent = "Notifications are blocked for this site in this browser.";
      return;
    }
    status.textContent = "Subscribing…";
    const push = await browserSubscription();
    const response = await fetch("/api/v1/subscriptions", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ username: username, push: push }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      status.textContent = typeof body.detail === "string" ? body.detail : "That did not work.";
      return;
    }
    remember(push.endpoint, body.manage_token);
    status.textContent = "Done: this browser will be notified when " + username + " starts playing.";
    await refreshAll();
  }

  function setUp(button) {
    const status = document.getElementById(button.dataset.pushStatus) || button;
    if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
      status.textContent = "This browser cannot show notifications from websites.";
      button.disabled = true;
      return;
    }
    button.hidden = false;
    button.addEventListener("click", (event) => {
      event.preventDefault();
      button.disabled = true;
      subscribe(button, status)
        .catch((error) => {
          status.textContent = "That did not work: " + error.message;
        })
        .finally(() => {
          button.disabled = false;
        });
    });
  }

  document.querySelectorAll("[data-push-subscribe]").forEach(setUp);
  refreshAll();
})();
