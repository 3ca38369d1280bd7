// Liveness capture component: guides the person to a selfie the service can judge.
//
//   import { startCapture } from "/static/liveness/capture.js";
//   const capture = startCapture({ sessionId, token, element, onDone, onError });
//   capture.stop();  // cancel
//
// Opens the front camera, shows it with an oval guide, posts downscaled frames to
// POST /sessions/{id}/quality a few times a second, says what to fix while a gate fails,
// captures automatically once every gate has passed for `holdMs`, posts the full-resolution
// frames to POST /sessions/{id}/selfie, then calls onDone({ sessionId, frames }). The verdict
// is never sent to the browser: the integrator's backend reads it with GET /sessions/{id}.
// onError({ code, message }) codes: no_camera, permission_denied, camera_blocked (the page is
// in a frame whose embedder does not allow the camera), insecure_context, camera_failed,
// session_expired, session_invalid, session_done, session_calls_spent, quota,
// network, service_error (a 5xx other than a passing 503), bad_request (400, 413),
// challenge_tries_exhausted. A 503 (the service busy a moment) is waited out like a rate's 429.
// A selfie whose 202 was lost on the way back (the connection reset after the service judged
// it) still ends in onDone: the next call's 409 `state` "done" says the verdict exists, and a
// 409 `state` "processing" (the selfie still being judged) is waited out like a 503.
//
// A session of a head_turn tenant runs the server's head-turn challenge first: each quality
// answer carries `challenge` ({instruction, step, steps, done, state}); the component draws
// the instruction over the oval (an arrow and a sentence), the progress per step, and says each
// new step to screen readers. The server alone draws and judges the steps; after a failure the
// retry button asks it for a new challenge (POST /sessions/{id}/challenge, new random steps).
// While it runs, a "More time" button makes the next quality call ask for another step's time
// (`more_time`; the answer's `extensions_left` says how often the session still may).
//
// A session of a when_unsure tenant takes the selfie first; when the service found its score
// unsure, the selfie's 202 carries `challenge` ({state: "pending"}): the component then runs the
// same challenge (quality calls, the same drawing and retry) and calls onDone once it has passed,
// or failed with no try left (the backend reads the verdict either way).

// Every text the component shows, per language. Gate codes are those of /liveness.
export const MESSAGES = {
  en: {
    title: "Selfie capture",
    help: "Hold your phone or camera at arm's length so your head and shoulders are in the frame. The photo is taken automatically.",
    starting: "Starting the camera…",
    looking: "Looking for your face…",
    hold_still: "Good. Hold still…",
    capturing: "Taking the photo…",
    sending: "Sending the photo…",
    done: "Done. Thank you.",
    cancelled: "Capture cancelled.",
    cancel: "Cancel",
    retry: "Try again",
    rate_limited: "One moment…",
    no_face: "We cannot see a face. Look at the camera, with your head and shoulders in the picture.",
    multiple_faces: "Only one person should be in the picture.",
    face_too_small: "Move closer to the camera.",
    face_too_close: "Move back a little: your head and shoulders should be in the picture.",
    face_cut_off: "Part of your face is out of the picture. Centre your face in the picture.",
    move_phone_left: "Your face is near the edge. Move the phone a little to your left.",
    move_phone_right: "Your face is near the edge. Move the phone a little to your right.",
    move_phone_up: "Your face is near the top. Raise the phone a little.",
    move_phone_down: "Your face is near the bottom. Lower the phone a little.",
    head_turned: "Look straight at the camera.",
    too_dark: "It is too dark. Add light in front of your face.",
    overexposed: "Too much light. Avoid direct light or glare on your face.",
    no_colour: "This camera gives a black-and-white picture. Use a colour camera.",
    too_blurry: "The picture is blurred. Hold still.",
    no_camera: "No camera was found on this device.",
    permission_denied: "Camera access was denied. Allow the camera for this site, then try again.",
    camera_blocked:
      "The camera cannot be used here: this page is shown inside another site that does not allow it. Open this page directly in a new tab, or contact the site that showed it.",
    insecure_context: "The camera needs a secure (https) page.",
    camera_failed: "The camera could not be started.",
    session_expired: "This capture session has expired. Reload the page to start a new one.",
    session_invalid: "This capture session is not valid. Start again.",
    session_done: "This capture session is already complete.",
    quota: "The service cannot take more checks right now.",
    network: "The service could not be reached. Check the connection.",
    service_error: "The service had a problem. Try again in a moment.",
    bad_request: "The service could not read the photo. Try again.",
    turn_left: "Turn your head to your left.",
    turn_right: "Turn your head to your right.",
    look_up: "Look up.",
    look_down: "Look down.",
    look_straight: "Look straight at the camera.",
    challenge_step: "Step {step} of {steps}",
    challenge_passed: "Well done. Look straight at the camera for the photo.",
    challenge_failed: "That did not work. Try again with a new sequence.",
    challenge_retry: "Start again",
    challenge_tries_exhausted: "Too many tries for this session. Start a new one.",
    session_calls_spent: "This capture session has made all its calls. Start a new one.",
    challenge_unsure: "One more check: move your head as each step asks. Each step is read out.",
    step_timeout: "That took too long.",
    wrong_direction: "That was not the direction asked for.",
    face_lost: "We lost sight of your face.",
    face_changed: "Your face moved too suddenly.",
    planar_motion: "That did not look like a real head turning.",
    too_few_frames: "That was too fast to follow. Move a little more slowly.",
    more_time: "More time",
    more_time_given: "More time given.",
  },
  fr: {
    title: "Prise du selfie",
    help: "Tenez le téléphone ou la caméra à bout de bras : la tête et les épaules doivent être dans le cadre. La photo est prise automatiquement.",
    starting: "Démarrage de la caméra…",
    looking: "Recherche de votre visage…",
    hold_still: "Bien. Ne bougez plus…",
    capturing: "Prise de la photo…",
    sending: "Envoi de la photo…",
    done: "Terminé. Merci.",
    cancelled: "Capture annulée.",
    cancel: "Annuler",
    retry: "Réessayer",
    rate_limited: "Un instant…",
    no_face: "Aucun visage n'est visible. Regardez la caméra, la tête et les épaules dans l'image.",
    multiple_faces: "Une seule personne doit être sur l'image.",
    face_too_small: "Rapprochez-vous de la caméra.",
    face_too_close: "Reculez un peu : la tête et les épaules doivent être sur l'image.",
    face_cut_off: "Une partie du visage sort de l'image. Centrez votre visage dans l'image.",
    move_phone_left: "Votre visage est près du bord. Déplacez le téléphone un peu vers votre gauche.",
    move_phone_right: "Votre visage est près du bord. Déplacez le téléphone un peu vers votre droite.",
    move_phone_up: "Votre visage est près du haut. Levez un peu le téléphone.",
    move_phone_down: "Votre visage est près du bas. Baissez un peu le téléphone.",
    head_turned: "Regardez droit vers la caméra.",
    too_dark: "Il fait trop sombre. Éclairez votre visage de face.",
    overexposed: "Trop de lumière. Évitez la lumière directe ou les reflets sur le visage.",
    no_colour: "Cette caméra donne une image en noir et blanc. Utilisez une caméra couleur.",
    too_blurry: "L'image est floue. Ne bougez plus.",
    no_camera: "Aucune caméra n'a été trouvée sur cet appareil.",
    permission_denied: "L'accès à la caméra a été refusé. Autorisez la caméra pour ce site, puis réessayez.",
    camera_blocked:
      "La caméra ne peut pas être utilisée ici : cette page est affichée dans un autre site qui ne l'autorise pas. Ouvrez cette page directement dans un nouvel onglet, ou contactez le site qui l'affiche.",
    insecure_context: "La caméra nécessite une page sécurisée (https).",
    camera_failed: "La caméra n'a pas pu démarrer.",
    session_expired: "Cette session de capture a expiré. Rechargez la page pour en commencer une nouvelle.",
    session_invalid: "Cette session de capture n'est pas valide. Recommencez.",
    session_done: "Cette session de capture est déjà terminée.",
    quota: "Le service ne peut pas accepter d'autres vérifications pour le moment.",
    network: "Le service est injoignable. Vérifiez la connexion.",
    service_error: "Le service a rencontré un problème. Réessayez dans un instant.",
    bad_request: "Le service n'a pas pu lire la photo. Réessayez.",
    turn_left: "Tournez la tête vers votre gauche.",
    turn_right: "Tournez la tête vers votre droite.",
    look_up: "Levez les yeux vers le haut.",
    look_down: "Baissez la tête.",
    look_straight: "Regardez droit vers la caméra.",
    challenge_step: "Étape {step} sur {steps}",
    challenge_passed: "Bravo. Regardez droit vers la caméra pour la photo.",
    challenge_failed: "Cela n'a pas fonctionné. Réessayez avec une nouvelle séquence.",
    challenge_retry: "Recommencer",
    challenge_tries_exhausted: "Trop d'essais pour cette session. Commencez-en une nouvelle.",
    session_calls_spent: "Cette session de capture a fait tous ses appels. Commencez-en une nouvelle.",
    challenge_unsure: "Une dernière vérification : bougez la tête comme chaque étape le demande. Chaque étape est lue.",
    step_timeout: "Cela a pris trop de temps.",
    wrong_direction: "Ce n'était pas la direction demandée.",
    face_lost: "Votre visage n'était plus visible.",
    face_changed: "Votre visage a bougé trop brusquement.",
    planar_motion: "Cela ne ressemblait pas à une vraie tête qui tourne.",
    too_few_frames: "Trop rapide pour être suivi. Bougez un peu plus lentement.",
    more_time: "Plus de temps",
    more_time_given: "Temps supplémentaire accordé.",
  },
};

const STYLE = `
.lc-root{font:16px/1.4 system-ui,sans-serif;max-width:640px;margin:0 auto;--lc-max-h:60vh}
.lc-stage{--lc-ratio:4/3;position:relative;width:min(100%,calc(var(--lc-max-h) * var(--lc-ratio)));margin:0 auto;aspect-ratio:var(--lc-ratio);background:#111;overflow:hidden;border-radius:8px}
.lc-mirror{position:absolute;inset:0;transform:scaleX(-1)}
.lc-mirror video{width:100%;height:100%;object-fit:fill;display:block}
.lc-box{position:absolute;border:2px dashed rgba(255,255,255,.7);border-radius:4px}
.lc-guide{position:absolute;inset:0;width:100%;height:100%;pointer-events:none}
.lc-guide ellipse{fill:none;stroke:#bbb;stroke-width:2;vector-effect:non-scaling-stroke}
.lc-root[data-phase=fix] .lc-guide ellipse{stroke:#f0a500;stroke-width:4}
.lc-root[data-phase=challenge] .lc-guide ellipse{stroke:#ffd400;stroke-width:4}
.lc-root[data-phase=pass] .lc-guide ellipse,.lc-root[data-phase=done] .lc-guide ellipse{stroke:#2ecc40;stroke-width:4}
.lc-status{min-height:3em;margin:.75em 0;font-size:1.15em;font-weight:600}
.lc-root[data-phase=error] .lc-status{color:#b00020}
.lc-help{margin:.5em 0;color:#444}
.lc-actions button{font:inherit;padding:.6em 1.2em;min-height:44px;margin-right:.5em}
.lc-sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
.lc-challenge{position:absolute;left:0;right:0;bottom:0;padding:.5em .75em;background:rgba(0,0,0,.6);color:#fff;display:flex;align-items:center;gap:.6em}
.lc-challenge[hidden]{display:none}
.lc-arrow{width:3.2em;height:3.2em;flex:none}
.lc-arrow path,.lc-arrow circle{fill:none;stroke:#ffd400;stroke-width:10;stroke-linecap:round;stroke-linejoin:round}
.lc-challenge-text{font-size:1.2em;font-weight:700;flex:1}
.lc-steps{display:flex;gap:.4em;list-style:none;margin:0;padding:0}
.lc-steps li{width:1em;height:1em;border-radius:50%;border:2px solid #fff}
.lc-steps li[data-state=done]{background:#2ecc40;border-color:#2ecc40}
.lc-steps li[data-state=current]{background:#ffd400;border-color:#ffd400}
.lc-root[data-challenge=failed] .lc-challenge{background:rgba(176,0,32,.8)}
.lc-root [hidden]{display:none!important}
@media (orientation:landscape) and (max-height:500px){
.lc-root{max-width:none;display:grid;grid-template-columns:auto 1fr;grid-template-rows:auto auto 1fr;column-gap:1em;align-items:start;--lc-max-h:calc(100vh - 1rem)}
.lc-stage{grid-column:1;grid-row:1/4;width:min(60vw,calc(var(--lc-max-h) * var(--lc-ratio)))}
.lc-status{grid-column:2;grid-row:1;margin-top:0}
.lc-help{grid-column:2;grid-row:2;margin-top:0}
.lc-actions{grid-column:2;grid-row:3}
}
`;

// The arrow of each instruction, as the person sees the mirrored preview: their own left is on
// the screen's left. viewBox 0 0 100 100.
const ARROWS = {
  turn_left: "M85 50H20M45 22L17 50L45 78",
  turn_right: "M15 50H80M55 22L83 50L55 78",
  look_up: "M50 85V20M22 45L50 17L78 45",
  look_down: "M50 15V80M22 55L50 83L78 55",
};

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// STYLE as a constructed style sheet the document adopts: a page whose Content-Security-Policy
// refuses inline styles (the demo's; an integrator's may too) applies it, where it refuses a
// <style> element. A browser without constructable sheets (Safari before 16.4) gets the element.
const adopted = new WeakSet();

function installStyle(doc) {
  const view = doc.defaultView;
  if (view && "adoptedStyleSheets" in doc && "replaceSync" in view.CSSStyleSheet.prototype) {
    if (adopted.has(doc)) return;
    const sheet = new view.CSSStyleSheet();
    sheet.replaceSync(STYLE);
    doc.adoptedStyleSheets = [...doc.adoptedStyleSheets, sheet];
    adopted.add(doc);
    return;
  }
  if (doc.getElementById("lc-style")) return;
  const style = doc.createElement("style");
  style.id = "lc-style";
  style.textContent = STYLE;
  doc.head.appendChild(style);
}

// The messages and the language they are in (the root's lang: a screen reader on a page of
// another language read the component's English or French with that page's voice). The
// integrator's own messages for a language the component lacks are taken as that language.
function pickMessages(lang, overrides) {
  const wanted = (lang || document.documentElement.lang || navigator.language || "en").toLowerCase();
  const base = wanted.split("-")[0];
  const known = MESSAGES[wanted] ? wanted : MESSAGES[base] ? base : null;
  const chosen = known || (lang && overrides ? lang : "en");
  return { t: { ...MESSAGES.en, ...(MESSAGES[known] || {}), ...(overrides || {}) }, chosen };
}

function build(element, t, lang) {
  const doc = element.ownerDocument;
  installStyle(doc);
  const root = doc.createElement("div");
  root.className = "lc-root";
  root.lang = lang;
  root.setAttribute("role", "group");
  root.setAttribute("aria-label", t.title);
  root.innerHTML = `
    <div class="lc-stage">
      <div class="lc-mirror"><video playsinline muted autoplay aria-hidden="true"></video>
        <div class="lc-box" hidden></div></div>
      <svg class="lc-guide" preserveAspectRatio="none" aria-hidden="true">
        <path fill="rgba(0,0,0,.5)" fill-rule="evenodd"/><ellipse/></svg>
      <div class="lc-challenge" aria-hidden="true" hidden>
        <svg class="lc-arrow" viewBox="0 0 100 100"><path/><circle cx="50" cy="50" r="0"/></svg>
        <span class="lc-challenge-text"></span>
        <ol class="lc-steps"></ol>
      </div>
    </div>
    <p class="lc-help"></p>
    <p class="lc-status" role="status" aria-live="polite" aria-atomic="true" tabindex="-1"></p>
    <div class="lc-actions"><button type="button" class="lc-cancel"></button>
      <button type="button" class="lc-more" hidden></button>
      <button type="button" class="lc-retry" hidden></button></div>`;
  drawGuide(root.querySelector(".lc-guide"), 4, 3);
  root.querySelector(".lc-help").textContent = t.help;
  root.querySelector(".lc-cancel").textContent = t.cancel;
  root.querySelector(".lc-retry").textContent = t.retry;
  root.querySelector(".lc-more").textContent = t.more_time;
  element.replaceChildren(root);
  return {
    root,
    video: root.querySelector("video"),
    stage: root.querySelector(".lc-stage"),
    guide: root.querySelector(".lc-guide"),
    box: root.querySelector(".lc-box"),
    status: root.querySelector(".lc-status"),
    cancel: root.querySelector(".lc-cancel"),
    retry: root.querySelector(".lc-retry"),
    more: root.querySelector(".lc-more"),
    challenge: root.querySelector(".lc-challenge"),
    arrow: root.querySelector(".lc-arrow"),
    challengeText: root.querySelector(".lc-challenge-text"),
    progress: root.querySelector(".lc-steps"),
  };
}

// WCAG 1.3.3: "inside the oval" needs sight. A face cut off by the frame's edge is told which way
// to move the phone, from the quality answer's face box: the camera's image is not mirrored,
// so a face on its right is off toward the person's own left (the guide's centre: 0.5, 0.42).
function offCentre(report) {
  if (report.code !== "face_cut_off" || !report.face) return null;
  const { x, y, w, h } = report.face;
  const dx = (x + w / 2) / report.width - 0.5;
  const dy = (y + h / 2) / report.height - 0.42;
  if (Math.abs(dx) >= Math.abs(dy)) return dx > 0 ? "move_phone_left" : "move_phone_right";
  return dy > 0 ? "move_phone_down" : "move_phone_up";
}

const fill = (template, values) => template.replace(/\{(\w+)\}/g, (_, key) => values[key] ?? "");

// The oval where the face should be: half the frame's height, so head and shoulders fit
// (the face_too_close gate wants the frame to hold at least 1.5x the face box).
function drawGuide(svg, width, height) {
  const ry = 0.25 * height;
  const rx = Math.min(0.75 * ry, 0.3 * width);
  const cx = width / 2;
  const cy = 0.42 * height;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const oval = `M${cx - rx} ${cy}a${rx} ${ry} 0 1 0 ${2 * rx} 0a${rx} ${ry} 0 1 0 ${-2 * rx} 0Z`;
  svg.querySelector("path").setAttribute("d", `M0 0H${width}V${height}H0Z ${oval}`);
  const ellipse = svg.querySelector("ellipse");
  for (const [name, value] of Object.entries({ cx, cy, rx, ry })) ellipse.setAttribute(name, value);
}

// Whether the page's Permissions Policy lets it use the camera: false in a frame whose <iframe>
// lacks allow="camera" (cross-origin), where getUserMedia fails with the NotAllowedError of a
// person's refusal and "allow the camera for this site" was advice they could not follow;
// null where the browser cannot tell (no policy API: Safari, Firefox).
function cameraAllowedHere() {
  const policy = document.permissionsPolicy || document.featurePolicy;
  if (!policy || typeof policy.allowsFeature !== "function") return null;
  return policy.allowsFeature("camera");
}

function framed() {
  try {
    return window.self !== window.top;
  } catch (_) {
    return true; // a cross-origin top refuses the comparison in old browsers
  }
}

function cameraErrorCode(error) {
  const name = error && error.name;
  if (name === "NotAllowedError" || name === "PermissionDeniedError")
    // Without the policy API a refusal in a frame is most often the embedder's policy.
    return cameraAllowedHere() === null && framed() ? "camera_blocked" : "permission_denied";
  if (name === "NotFoundError" || name === "OverconstrainedError" || name === "DevicesNotFoundError")
    return "no_camera";
  if (name === "SecurityError") return "insecure_context";
  return "camera_failed";
}

function sessionErrorCode(status, body) {
  if (status === 401) return body && body.code === "token_expired" ? "session_expired" : "session_invalid";
  if (status === 404) return "session_invalid";
  if (status === 409) return body && body.code === "challenge_unreadable" ? "session_invalid" : "session_done";
  if (status === 429) return body && body.code === "session_calls_spent" ? body.code : "quota";
  if (status === 400 || status === 413) return "bad_request";
  if (status >= 500) return "service_error"; // the service answered: the connection is fine
  return "network";
}

// How long 503s in a row (the service busy: its database locked, every worker slot taken) are
// waited out, each for its Retry-After (1 s without one), before the capture ends with
// service_error: a session lives 300 s by default, and a lock held past a minute is an outage.
const BUSY_LIMIT_S = 60;

// A 429 with an `error` is a rate (the session's or the tenant's): wait and go on. The quota's
// 429 has a `message`, and the session's spent budget the code `session_calls_spent` (its
// Retry-After, about 300 s, is the session's remaining life: no call would be taken): both end
// the capture.
const isRateLimit = (reply) =>
  reply.status === 429 &&
  !(reply.body && (reply.body.message || reply.body.code === "session_calls_spent"));

export function startCapture({
  sessionId,
  token,
  element,
  onDone = () => {},
  onError = () => {},
  lang,
  messages,
  baseUrl = "",
  burst = 3, // frames sent with the selfie, taken within a second (the service fuses them)
  pollMs = 250, // pause between quality calls (a few per second)
  holdMs = 800, // every gate must pass this long before the photo is taken
  passedHoldMs = 2000, // the challenge's "Well done" stays this long in the status line
  qualityWidth = 480, // width of the frames sent to the quality endpoint
}) {
  const { t, chosen } = pickMessages(lang, messages);
  const ui = build(element, t, chosen);
  let stream = null;
  let stopped = false;
  let passSince = null;
  let generation = 0;
  let challengeRetry = false; // the retry button asks for a new challenge, not the camera
  let passedAt = null; // when the challenge was first seen passed: its sentence is held a while
  let heldFrames = 0; // frames of a selfie held for the challenge (when_unsure): it decides
  // "More time" (WCAG 2.2.1): the next quality call asks the server for another step's time
  // limit (CAPTURE_CHALLENGE_EXTENSIONS per session); once granted the status line says so
  // until the step changes.
  let moreTime = false;
  let extensionsLeft = null;
  let extendedStep = "";
  let busyWaitedS = 0; // seconds of 503 (or of a selfie being judged) waited in a row (BUSY_LIMIT_S)
  let selfieFrames = 0; // frames of the last selfie posted, once one has been

  // The status line (aria-live) gets one sentence per poll, written only when it changes: two
  // writes in one task (the challenge's sentence, then a gate's) replaced its text node 3-4
  // times a second with the words unchanged (30 insertions in 5 s), and a screen reader said
  // neither, or only the last ("Well done" was never heard).
  const tell = (text, phase, key) => {
    ui.root.dataset.phase = phase;
    ui.root.dataset.message = key;
    if (ui.status.textContent !== text) ui.status.textContent = text;
  };
  const say = (key, phase, fallback) => tell(t[key] || fallback || key, phase, key);

  const closeCamera = () => {
    if (stream) stream.getTracks().forEach((track) => track.stop());
    stream = null;
  };

  // Once the capture has ended, Cancel and More time do nothing: they go (an expired session
  // left a dead Cancel as the only control). Focus that was on one moves to the status line,
  // which says what to do next, rather than to the page's top.
  const ended = () => {
    const hadFocus = ui.root.contains(ui.root.ownerDocument.activeElement);
    ui.cancel.hidden = true;
    ui.more.hidden = true;
    return hadFocus;
  };

  const fail = (code) => {
    stopped = true;
    closeCamera();
    const hadFocus = ended();
    challengeRetry = false;
    ui.retry.textContent = t.retry;
    ui.status.setAttribute("role", "alert");
    say(code, "error");
    ui.retry.hidden = !["permission_denied", "camera_failed", "network", "no_camera", "service_error", "bad_request"].includes(
      code,
    );
    if (!ui.retry.hidden) ui.retry.focus();
    else if (hadFocus) ui.status.focus();
    onError({ code, message: t[code] || code });
  };

  const grab = (width, quality) => {
    const video = ui.video;
    const scale = Math.min(1, width / video.videoWidth);
    const canvas = document.createElement("canvas");
    canvas.width = Math.round(video.videoWidth * scale);
    canvas.height = Math.round(video.videoHeight * scale);
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    return canvas.toDataURL("image/jpeg", quality);
  };

  const call = async (action, body) => {
    const response = await fetch(`${baseUrl}/sessions/${encodeURIComponent(sessionId)}/${action}`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
    let json = null;
    try {
      json = await response.json();
    } catch (_) {
      /* not JSON: handled by status */
    }
    const reply = { status: response.status, body: json, retryAfter: Number(response.headers.get("Retry-After")) || 1 };
    if (reply.status !== 503 && !beingJudged(reply)) busyWaitedS = 0;
    return reply;
  };

  // A selfie's 202 lost on its way back while the service still judges it (0.1-0.3 s): the
  // next call's 409 says the session is `processing`. Waited out as a 503 is: the answer after
  // it says `done` (the verdict, below) or `open` again (no verdict: the capture goes on).
  const beingJudged = (reply) =>
    selfieFrames > 0 && reply.status === 409 && reply.body && reply.body.state === "processing";

  // A 503, or a selfie being judged, within BUSY_LIMIT_S: say "One moment", wait its
  // Retry-After, and the caller tries again (true). Past it, or any other answer: false.
  const waitedBusy = async (reply) => {
    if ((reply.status !== 503 && !beingJudged(reply)) || busyWaitedS >= BUSY_LIMIT_S) return false;
    passSince = null;
    busyWaitedS += reply.retryAfter;
    say("rate_limited", ui.root.dataset.phase || "fix");
    await sleep(reply.retryAfter * 1000);
    return true;
  };

  // The selfie's 202 lost on its way back (a connection reset after the service judged it):
  // the next call's 409 says the session is done, and the capture is.
  const verdictExists = (reply) =>
    selfieFrames > 0 && reply.status === 409 && reply.body && reply.body.state === "done";

  const finished = (frames) => {
    stopped = true;
    closeCamera();
    ended();
    say("done", "done");
    onDone({ sessionId, frames });
    return true;
  };

  const drawBox = (report) => {
    if (!report.face) {
      ui.box.hidden = true;
      return;
    }
    const { x, y, w, h } = report.face;
    Object.assign(ui.box.style, {
      left: `${(100 * x) / report.width}%`,
      top: `${(100 * y) / report.height}%`,
      width: `${(100 * w) / report.width}%`,
      height: `${(100 * h) / report.height}%`,
    });
    ui.box.hidden = false;
  };

  // The challenge over the oval: arrow, sentence, one dot per step. The status line (aria-live)
  // says the same sentence with the step number, once per change.
  const challengeText = (challenge) => {
    if (challenge.state === "failed") return [t[challenge.code], t.challenge_failed].filter(Boolean).join(" ");
    if (challenge.state === "passed") return t.challenge_passed;
    return t[challenge.instruction] || challenge.instruction;
  };

  // Draws the challenge; its sentence for the status line: { text, phase, key }.
  const showChallenge = (challenge) => {
    const { state, instruction, step, steps, done } = challenge;
    Object.assign(ui.root.dataset, { challenge: state, instruction, step: String(step) });
    ui.challenge.hidden = false;
    const turning = state === "running" && instruction in ARROWS;
    ui.arrow.querySelector("path").setAttribute("d", turning ? ARROWS[instruction] : "");
    ui.arrow.querySelector("circle").setAttribute("r", turning || state === "failed" ? "0" : "18");
    // Over the video, a failure says only why (the status line below says what to do).
    ui.challengeText.textContent =
      state === "failed" ? t[challenge.code] || t.challenge_failed : challengeText(challenge);
    while (ui.progress.children.length < steps) ui.progress.appendChild(document.createElement("li"));
    while (ui.progress.children.length > steps) ui.progress.lastChild.remove();
    [...ui.progress.children].forEach((dot, i) => {
      const current = turning && i === done;
      dot.dataset.state = i < done || state === "passed" ? "done" : current ? "current" : "todo";
    });
    const key = state === "running" ? instruction : `challenge_${state}`;
    const sentence = challengeText(challenge);
    let text = turning ? `${fill(t.challenge_step, { step, steps })}: ${sentence}` : sentence;
    const here = `${state}-${step}-${instruction}`;
    const left = challenge.extensions_left;
    if (extensionsLeft !== null && left < extensionsLeft) extendedStep = here; // granted
    if (left !== undefined) extensionsLeft = left;
    if (extendedStep === here) text = `${t.more_time_given} ${text}`;
    ui.more.hidden = !(state === "running" && left > 0);
    // Once passed, it is said once: then the gates' guidance owns the status line again.
    return { text, phase: state === "failed" ? "fix" : "challenge", key };
  };
  const sayChallenge = (challenge) => {
    const { text, phase, key } = showChallenge(challenge);
    tell(text, phase, key);
  };

  // A failed challenge pauses the loop (camera on) until the person asks for a new one.
  const challengeFailed = (challenge) => {
    passSince = null;
    if (!challenge.tries_left) {
      fail("challenge_tries_exhausted");
      return true;
    }
    challengeRetry = true;
    ui.retry.textContent = t.challenge_retry;
    ui.retry.hidden = false;
    ui.retry.focus();
    return true;
  };

  // A held selfie's challenge decides its verdict: passed, or failed with no try left.
  const decided = (challenge) =>
    challenge.state === "passed" || (challenge.state === "failed" && !challenge.tries_left);

  const heldDone = () => finished(heldFrames);

  const newChallenge = async () => {
    generation += 1;
    const mine = generation;
    challengeRetry = false;
    ui.retry.hidden = true;
    ui.retry.textContent = t.retry;
    let reply;
    try {
      reply = await call("challenge", {});
    } catch (_) {
      return gone(mine) ? undefined : fail("network");
    }
    if (gone(mine)) return;
    if (await waitedBusy(reply)) return gone(mine) ? undefined : newChallenge();
    if (verdictExists(reply)) return finished(selfieFrames);
    if (reply.status === 200) {
      passedAt = null;
      sayChallenge(reply.body.challenge);
      loop(mine);
      return;
    }
    const exhausted = reply.body && reply.body.code === "challenge_tries_exhausted";
    fail(exhausted ? "challenge_tries_exhausted" : sessionErrorCode(reply.status, reply.body));
  };

  // A cancel (or a restart) while a call was out: its answer is dropped (it overwrote
  // "Capture cancelled." in 3 of 6 tries during a quality call).
  const gone = (mine) => stopped || mine !== generation;

  const sendSelfie = async (mine) => {
    say("capturing", "pass");
    const frames = [];
    for (let i = 0; i < burst; i += 1) {
      if (i) await sleep(150);
      if (gone(mine)) return true;
      frames.push(grab(4096, 0.92));
    }
    say("sending", "pass");
    selfieFrames = frames.length;
    const reply = await call("selfie", burst > 1 ? { frames } : { selfie_image: frames[0] });
    if (gone(mine)) return true;
    if (reply.status === 202 && reply.body && reply.body.challenge) {
      heldFrames = frames.length; // unsure: the challenge now decides, camera on
      passSince = null;
      say("challenge_unsure", "challenge");
      return false;
    }
    if (reply.status === 202) return finished(frames.length);
    if (verdictExists(reply)) return finished(selfieFrames);
    if (await waitedBusy(reply)) return false;
    if (reply.status === 422 && reply.body) {
      passSince = null; // the full frame failed a gate: keep guiding
      say(reply.body.code, "fix", reply.body.error);
      return false;
    }
    if (isRateLimit(reply)) {
      passSince = null;
      say("rate_limited", "fix");
      await sleep(reply.retryAfter * 1000);
      return false;
    }
    if (reply.status === 409 && reply.body && String(reply.body.code).startsWith("challenge_")) {
      passSince = null; // the challenge has not passed: the next quality answer says why
      return false;
    }
    fail(sessionErrorCode(reply.status, reply.body));
    return true;
  };

  const step = async (mine) => {
    const asked = moreTime ? { more_time: true } : {};
    moreTime = false;
    const reply = await call("quality", { selfie_image: grab(qualityWidth, 0.8), ...asked });
    if (gone(mine)) return true;
    if (isRateLimit(reply)) {
      say("rate_limited", ui.root.dataset.phase || "fix");
      await sleep(reply.retryAfter * 1000);
      return false;
    }
    if (await waitedBusy(reply)) return false;
    if (verdictExists(reply)) return finished(selfieFrames);
    if (reply.status !== 200) {
      fail(sessionErrorCode(reply.status, reply.body));
      return true;
    }
    const report = reply.body;
    drawBox(report);
    const challenge = report.challenge; // a head_turn tenant's sessions, or a held selfie's
    const sentence = challenge ? showChallenge(challenge) : null;
    if (heldFrames && challenge && decided(challenge)) return heldDone();
    if (challenge && challenge.state === "failed") {
      tell(sentence.text, sentence.phase, sentence.key);
      return challengeFailed(challenge);
    }
    if (challenge && challenge.state === "running") {
      // Turning heads fail the gates: a missing face is said, and any gate before the first
      // step (the server takes its frontal reference only from a frame that passes them all).
      passSince = null;
      if (!report.face || (challenge.step === 0 && !report.passed)) {
        say(offCentre(report) || report.code, "fix", report.error);
      } else {
        tell(sentence.text, sentence.phase, sentence.key);
      }
      return false;
    }
    // Passed: its sentence stays ~2 s before the gates' guidance and the photo take the line
    // (written and overwritten in one task, it was never heard).
    if (challenge && challenge.state === "passed" && !heldFrames) {
      passedAt = passedAt ?? performance.now();
      if (performance.now() - passedAt < passedHoldMs) {
        passSince = null;
        tell(sentence.text, sentence.phase, sentence.key);
        return false;
      }
    }
    if (heldFrames) return false; // the selfie is taken: only the challenge goes on
    if (!report.passed) {
      passSince = null;
      say(offCentre(report) || report.code, "fix", report.error);
      return false;
    }
    passSince = passSince ?? performance.now();
    if (performance.now() - passSince < holdMs) {
      say("hold_still", "pass");
      return false;
    }
    return sendSelfie(mine);
  };

  const loop = async (mine) => {
    while (!stopped && mine === generation) {
      try {
        if (ui.video.videoWidth && (await step(mine))) return;
      } catch (_) {
        if (stopped || mine !== generation) return;
        say("network", "fix"); // transient: keep trying while the token is valid
      }
      await sleep(pollMs);
    }
  };

  const start = async () => {
    generation += 1;
    const mine = generation;
    stopped = false;
    passSince = null;
    passedAt = null;
    challengeRetry = false;
    ui.retry.hidden = true;
    ui.challenge.hidden = true;
    ui.more.hidden = true;
    ui.cancel.hidden = false;
    ui.status.setAttribute("role", "status");
    say("starting", "start");
    if (!window.isSecureContext) return fail("insecure_context");
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return fail("no_camera");
    if (cameraAllowedHere() === false) return fail("camera_blocked");
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: false,
        video: { facingMode: "user", width: { ideal: 1280 }, height: { ideal: 720 } },
      });
    } catch (error) {
      return gone(mine) ? undefined : fail(cameraErrorCode(error));
    }
    if (gone(mine)) return closeCamera(); // cancelled while the camera was opening
    // A camera unplugged (or taken by another app) ends its track: said at once, where the
    // loop went on posting the frozen last frame (42-47 quality calls) and never told.
    const opened = stream;
    opened.getVideoTracks().forEach((track) =>
      track.addEventListener("ended", () => {
        if (!stopped && stream === opened) fail("camera_failed");
      }),
    );
    ui.video.srcObject = stream;
    await ui.video.play().catch(() => {});
    const { videoWidth: width, videoHeight: height } = ui.video;
    if (width) {
      ui.stage.style.setProperty("--lc-ratio", `${width} / ${height}`);
      drawGuide(ui.guide, width, height);
    }
    // Below the fold (a phone turned sideways, 640x360, under the page's own header) the person
    // saw the video's top and no instruction: the whole component is brought into view once
    // (no scroll where it is already in view).
    ui.root.scrollIntoView({ block: "nearest" });
    say("looking", "fix");
    loop(mine);
  };

  const stop = () => {
    if (stopped) return;
    stopped = true;
    generation += 1;
    closeCamera();
    ended();
    say("cancelled", "error");
    // Nothing could restart after a cancel (Escape included): "Try again" starts over.
    challengeRetry = false;
    ui.retry.textContent = t.retry;
    ui.retry.hidden = false;
    ui.retry.focus();
  };

  ui.cancel.addEventListener("click", stop);
  ui.more.addEventListener("click", () => {
    moreTime = true;
  });
  ui.retry.addEventListener("click", () => (challengeRetry ? newChallenge() : start()));
  ui.root.addEventListener("keydown", (event) => {
    if (event.key === "Escape") stop();
  });
  start();
  return { stop, retry: start, element: ui.root };
}
