// "Notify this browser" (SPEC §11), the only script the pages load: registers the
// service worker (/sw.js), subscribes with the site's VAPID key (GET /api/v1/push/key)
// and sends the subscription to POST /api/v1/subscriptions. The manage token of the
// answer is kept in this browser (localStorage), so its subscriptions can be listed,
// paused and removed from here later.
"use strict";

(function () {
  const TOKENS = "chess-helper-push-manage-tokens";

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

  function remember(token) {
    if (!token) return;
    const tokens = JSON.parse(localStorage.getItem(TOKENS) || "[]");
    if (!tokens.includes(token)) tokens.push(token);
    localStorage.setItem(TOKENS, JSON.stringify(tokens));
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
    remember(body.manage_token);
    status.textContent = "Done: this browser will be notified when " + username + " starts playing.";
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
})();
