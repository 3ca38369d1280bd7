// The one-time hash_id's Copy button (included by admin/accounts/copy_script.html; a file, as the
// pages' Content-Security-Policy refuses inline scripts). navigator.clipboard exists only in a
// secure context (https or localhost); elsewhere the text is selected and copied with execCommand.
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-copy]");
  if (!button) return;
  var source = document.getElementById(button.dataset.copy);
  function done() { button.textContent = "Copied"; button.dataset.copied = "true"; }
  function fallback() {
    var range = document.createRange();
    range.selectNodeContents(source);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    if (document.execCommand("copy")) { done(); } else { button.textContent = "Press Ctrl+C"; }
  }
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(source.textContent).then(done, fallback);
  } else {
    fallback();
  }
});
