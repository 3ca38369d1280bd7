// The calibrate page's jobs, kept current while one is queued or running (a file: the pages'
// Content-Security-Policy refuses inline scripts). It asks the page's JSON every few seconds
// (data-poll, data-every) and changes only the jobs table, the status region (aria-live,
// read out when its text changes) and the threshold: never the form, its typed values, chosen
// file or focus, which the page's former 3 s reload wiped. The server marks these requests
// passive: they do not keep an idle operator signed in. It stops once no job is pending, or
// at an answer that is not the JSON (signed out, refused): the Refresh link still works. A 5xx
// or no answer at all is asked again a poll later.
(function () {
  "use strict";
  var panel = document.getElementById("calibration-jobs-panel");
  if (!panel || !panel.dataset.poll) return;
  var region = document.getElementById("calibration-jobs-status");
  var body = document.querySelector("#calibration-jobs tbody");
  var every = Math.max(1, Number(panel.dataset.every) || 3) * 1000;

  function setText(element, text) {
    if (element && element.textContent !== text) element.textContent = text;
  }

  function rowOf(job) {
    var row = document.getElementById(job.id);
    if (!row) {
      row = document.createElement("tr");
      row.id = job.id;
    }
    var name = "job-" + job.state;
    if (row.className !== name) row.className = name;
    job.cells.forEach(function (text, i) {
      var cell = row.cells[i] || row.insertCell(i);
      setText(cell, text);
    });
    return row;
  }

  function show(data) {
    data.jobs.forEach(function (job, i) {
      var row = rowOf(job);
      if (body.rows[i] !== row) body.insertBefore(row, body.rows[i] || null);
    });
    while (body.rows.length > data.jobs.length) body.deleteRow(-1);
    setText(document.getElementById("tenant-threshold"), data.threshold);
    setText(region, data.summary);
  }

  function stopped() {
    setText(region, "The jobs are no longer followed here (the sign-in may have ended): " +
      "refresh the page to see them.");
  }

  function later() {
    window.setTimeout(poll, every);
  }

  function poll() {
    fetch(panel.dataset.poll, {
      credentials: "same-origin",
      redirect: "manual", // to the login page once signed out: not followed
      headers: { Accept: "application/json" },
    }).then(function (response) {
      var type = response.headers.get("Content-Type") || "";
      // A 5xx (a proxy's 502 while gunicorn restarts, a 503 with the database busy) passes:
      // asked again. A redirect (opaque, status 0) or a 403 is the sign-in ended: stopped.
      if (response.status >= 500) return later();
      if (!response.ok || type.indexOf("application/json") !== 0) return stopped();
      return response.json().then(function (data) {
        show(data);
        if (data.pending) later();
      }, stopped);
    }, later); // no answer (the server restarting): asked again
  }

  later();
})();
