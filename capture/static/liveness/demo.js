// The demo page's wiring: what an integrator's page does with the component.
import { startCapture } from "./capture.js";

const element = document.getElementById("capture");
const outcome = document.getElementById("outcome");
const again = document.getElementById("again");
// The failures only a new session gets past: the page offers one (the component cannot).
const SESSION_ENDED = [
  "session_expired",
  "session_invalid",
  "session_done",
  "session_calls_spent",
  "challenge_tries_exhausted",
];
startCapture({
  sessionId: element.dataset.sessionId,
  token: element.dataset.token,
  lang: element.dataset.lang,
  element,
  onDone: () => {
    // The browser never sees the verdict: the server reads it (GET /sessions/{id}).
    window.location.assign(element.dataset.resultUrl);
  },
  onError: ({ code, message }) => {
    outcome.dataset.code = code;
    outcome.textContent = `Capture failed: ${message}`;
    if (SESSION_ENDED.includes(code)) {
      again.hidden = false;
      again.focus();
    }
  },
});
