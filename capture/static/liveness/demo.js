// The demo page's wiring: what an integrator's page does with the component.
import { startCapture } from "./capture.js";

const element = document.getElementById("capture");
const outcome = document.getElementById("outcome");
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
  },
});
