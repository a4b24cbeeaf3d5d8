// The service worker of the site (SPEC §11): shows each Web Push alert and opens what it
// is about when clicked. Served at /sw.js so that its scope is the whole site.
//
// An alert's payload (decrypted by the browser) is JSON: {title, body, url, tag,
// unsubscribe_url?, manage_url?} (app/push/message.py, Notification).
"use strict";

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

function readPayload(event) {
  if (!event.data) return {};
  try {
    return event.data.json();
  } catch (error) {
    return { body: event.data.text() };
  }
}

self.addEventListener("push", (event) => {
  const data = readPayload(event);
  const actions = [];
  if (data.unsubscribe_url) actions.push({ action: "unsubscribe", title: "Unsubscribe" });
  if (data.manage_url) actions.push({ action: "manage", title: "Settings" });
  const options = {
    body: data.body || "",
    // One notification per player on screen: a newer alert replaces an unread one.
    tag: data.tag || "chess-helper",
    renotify: true,
    requireInteraction: false,
    actions: actions,
    data: {
      url: data.url || "/",
      unsubscribe_url: data.unsubscribe_url || null,
      manage_url: data.manage_url || null,
    },
  };
  event.waitUntil(self.registration.showNotification(data.title || "Chess.com Helper", options));
});

self.addEventListener("notificationclick", (event) => {
  const notification = event.notification;
  const data = notification.data || {};
  notification.close();
  if (event.action === "unsubscribe" && data.unsubscribe_url) {
    // The RFC 8058 one-click body the unsubscribe link accepts: no page to open.
    event.waitUntil(
      fetch(data.unsubscribe_url, {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
        body: "List-Unsubscribe=One-Click",
        credentials: "omit",
      })
    );
    return;
  }
  const target = event.action === "manage" && data.manage_url ? data.manage_url : data.url;
  event.waitUntil(self.clients.openWindow(target || "/"));
});
