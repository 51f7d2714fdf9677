// A minimal stand-in for https://telegram.org/js/telegram-web-app.js, served to the browser
// tests by route interception (the test machine has no internet, and the real script talks to
// a Telegram client the tests do not have). It keeps the parts of Telegram's API the Mini App
// uses, parsed from the launch fragment the same way the real script does, and records what
// the app asked of it in `window.__telegram` so the tests can check and press the buttons.
(function () {
  "use strict";
  var params = new URLSearchParams(location.hash.slice(1));
  var initData = params.get("tgWebAppData") || "";
  var themeParams = {};
  try {
    themeParams = JSON.parse(params.get("tgWebAppThemeParams") || "{}");
  } catch (error) {
    themeParams = {};
  }
  var state = {
    mainButton: { text: "", visible: false, active: true, progress: false },
    backButtonVisible: false,
    closingConfirmation: false,
    ready: false,
    expanded: false,
  };
  window.__telegram = state;

  function emitter() {
    var callbacks = [];
    return {
      on: function (callback) { callbacks.push(callback); },
      off: function (callback) { callbacks = callbacks.filter(function (c) { return c !== callback; }); },
      fire: function () { callbacks.slice().forEach(function (c) { c(); }); },
    };
  }
  var mainClicks = emitter();
  var backClicks = emitter();
  var events = {};

  var MainButton = {
    setText: function (text) { state.mainButton.text = String(text); return MainButton; },
    show: function () { state.mainButton.visible = true; return MainButton; },
    hide: function () { state.mainButton.visible = false; return MainButton; },
    enable: function () { state.mainButton.active = true; return MainButton; },
    disable: function () { state.mainButton.active = false; return MainButton; },
    showProgress: function () { state.mainButton.progress = true; return MainButton; },
    hideProgress: function () { state.mainButton.progress = false; return MainButton; },
    onClick: function (callback) { mainClicks.on(callback); return MainButton; },
    offClick: function (callback) { mainClicks.off(callback); return MainButton; },
    setParams: function (p) { if (p.text) state.mainButton.text = p.text; return MainButton; },
  };
  var BackButton = {
    show: function () { state.backButtonVisible = true; return BackButton; },
    hide: function () { state.backButtonVisible = false; return BackButton; },
    onClick: function (callback) { backClicks.on(callback); return BackButton; },
    offClick: function (callback) { backClicks.off(callback); return BackButton; },
  };
  function luminance(color) {
    var m = /^#([0-9a-f]{6})$/i.exec(color || "");
    if (!m) return 255;
    var v = parseInt(m[1], 16);
    return 0.2126 * ((v >> 16) & 255) + 0.7152 * ((v >> 8) & 255) + 0.0722 * (v & 255);
  }

  window.Telegram = {
    WebApp: {
      initData: initData,
      initDataUnsafe: {},
      version: params.get("tgWebAppVersion") || "8.0",
      platform: params.get("tgWebAppPlatform") || "unknown",
      themeParams: themeParams,
      colorScheme: luminance(themeParams.bg_color) < 128 ? "dark" : "light",
      MainButton: MainButton,
      BackButton: BackButton,
      HapticFeedback: { notificationOccurred: function () {}, impactOccurred: function () {} },
      ready: function () { state.ready = true; },
      expand: function () { state.expanded = true; },
      enableClosingConfirmation: function () { state.closingConfirmation = true; },
      disableClosingConfirmation: function () { state.closingConfirmation = false; },
      onEvent: function (name, callback) { (events[name] = events[name] || []).push(callback); },
      offEvent: function (name, callback) {
        events[name] = (events[name] || []).filter(function (c) { return c !== callback; });
      },
      isVersionAtLeast: function () { return true; },
    },
  };
  // What a tap on Telegram's own buttons would do, and a switch of the client's theme.
  state.pressMainButton = function () { mainClicks.fire(); };
  state.pressBackButton = function () { backClicks.fire(); };
  state.changeTheme = function (params) {
    var app = window.Telegram.WebApp;
    app.themeParams = params;
    app.colorScheme = luminance(params.bg_color) < 128 ? "dark" : "light";
    (events.themeChanged || []).forEach(function (callback) { callback(); });
  };
})();
