// Warns two minutes before the idle timeout (ASVS 7.3.1; NHS.UK "timeout" pattern) and
// lets the person stay logged in. Without JavaScript the server ends the session anyway.
const box = document.getElementById("hs-idle");
if (box) {
  const idleMs = Number(box.dataset.idleSeconds) * 1000;
  const warnMs = Math.max(idleMs - 120000, idleMs / 2);
  const keepalive = box.dataset.keepaliveUrl;
  const loginUrl = box.dataset.loginUrl;
  const button = box.querySelector("button");
  let warnTimer;
  let endTimer;
  const arm = () => {
    clearTimeout(warnTimer);
    clearTimeout(endTimer);
    box.hidden = true;
    warnTimer = setTimeout(() => {
      box.hidden = false;
      box.querySelector("h2").focus();
    }, warnMs);
    endTimer = setTimeout(() => {
      window.location.assign(loginUrl);
    }, idleMs);
  };
  button.addEventListener("click", async () => {
    const response = await fetch(keepalive, { credentials: "same-origin" });
    if (response.ok) {
      arm();
    } else {
      window.location.assign(loginUrl);
    }
  });
  arm();
}
