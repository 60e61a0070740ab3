// Passkeys (WebAuthn) for HealthSpace: create one, or use one at login.
//
// Progressive enhancement: a form marked data-passkey="register" or "login" is taken over;
// without this script (or without WebAuthn) the page says what to do instead. The server
// sends options as JSON with base64url strings; WebAuthn wants ArrayBuffers, so both ways
// are converted here. The CSRF token is read from the form's hidden input (the cookie is
// HttpOnly) and sent in the X-CSRFToken header.

const toBytes = (b64url) => {
  const b64 = b64url.replace(/-/g, "+").replace(/_/g, "/");
  const padded = b64 + "=".repeat((4 - (b64.length % 4)) % 4);
  const raw = atob(padded);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i += 1) bytes[i] = raw.charCodeAt(i);
  return bytes.buffer;
};

const toB64url = (buffer) => {
  const bytes = new Uint8Array(buffer);
  let raw = "";
  for (let i = 0; i < bytes.length; i += 1) raw += String.fromCharCode(bytes[i]);
  return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
};

const creationOptions = (o) => ({
  ...o,
  challenge: toBytes(o.challenge),
  user: { ...o.user, id: toBytes(o.user.id) },
  excludeCredentials: (o.excludeCredentials || []).map((c) => ({ ...c, id: toBytes(c.id) })),
});

const requestOptions = (o) => ({
  ...o,
  challenge: toBytes(o.challenge),
  allowCredentials: (o.allowCredentials || []).map((c) => ({ ...c, id: toBytes(c.id) })),
});

const attestationJSON = (cred) => ({
  id: cred.id,
  rawId: toB64url(cred.rawId),
  type: cred.type,
  authenticatorAttachment: cred.authenticatorAttachment || undefined,
  clientExtensionResults: cred.getClientExtensionResults(),
  response: {
    clientDataJSON: toB64url(cred.response.clientDataJSON),
    attestationObject: toB64url(cred.response.attestationObject),
    transports: cred.response.getTransports ? cred.response.getTransports() : [],
  },
});

const assertionJSON = (cred) => ({
  id: cred.id,
  rawId: toB64url(cred.rawId),
  type: cred.type,
  authenticatorAttachment: cred.authenticatorAttachment || undefined,
  clientExtensionResults: cred.getClientExtensionResults(),
  response: {
    clientDataJSON: toB64url(cred.response.clientDataJSON),
    authenticatorData: toB64url(cred.response.authenticatorData),
    signature: toB64url(cred.response.signature),
    userHandle: cred.response.userHandle ? toB64url(cred.response.userHandle) : null,
  },
});

const showError = (form, message) => {
  const summary = document.getElementById(form.dataset.errorSummary || "passkey-error");
  if (!summary) return;
  const list = summary.querySelector(".nhsuk-error-summary__list");
  list.replaceChildren();
  const item = document.createElement("li");
  item.textContent = message;
  list.append(item);
  summary.hidden = false;
  summary.focus();
};

const postJSON = async (form, url, body) => {
  const token = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": token },
    body: JSON.stringify(body),
  });
  let data = {};
  try {
    data = await response.json();
  } catch {
    data = {};
  }
  return { ok: response.ok, data };
};

const CANCELLED =
  "The passkey was not used. Try again, or choose another way to log in.";
const UNSUPPORTED =
  "This browser cannot use passkeys. Use another way to log in, or another browser.";

const run = async (form) => {
  const mode = form.dataset.passkey;
  const next = form.querySelector("input[name=next]")?.value || "";
  const name = form.querySelector("input[name=name]")?.value || "";
  const options = await postJSON(form, form.dataset.optionsUrl, {});
  if (!options.ok) {
    if (options.data.redirect) window.location.assign(options.data.redirect);
    else showError(form, options.data.error || CANCELLED);
    return;
  }
  let credential;
  try {
    credential =
      mode === "register"
        ? await navigator.credentials.create({ publicKey: creationOptions(options.data.publicKey) })
        : await navigator.credentials.get({ publicKey: requestOptions(options.data.publicKey) });
  } catch (error) {
    showError(
      form,
      error && error.name === "InvalidStateError" && mode === "register"
        ? "This passkey is already set up for HealthSpace."
        : CANCELLED,
    );
    return;
  }
  if (!credential) {
    showError(form, CANCELLED);
    return;
  }
  const payload = {
    next,
    name,
    credential: mode === "register" ? attestationJSON(credential) : assertionJSON(credential),
  };
  const result = await postJSON(form, form.dataset.verifyUrl, payload);
  // A redirect is the next page on success, or the login or password page when the
  // session no longer allows the step.
  if (result.data.redirect) window.location.assign(result.data.redirect);
  else showError(form, result.data.error || CANCELLED);
};

for (const form of document.querySelectorAll("form[data-passkey]")) {
  const button = form.querySelector("button");
  if (!window.PublicKeyCredential || !navigator.credentials) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      showError(form, UNSUPPORTED);
    });
    continue;
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (button) button.disabled = true;
    try {
      await run(form);
    } catch {
      showError(form, CANCELLED);
    } finally {
      if (button) button.disabled = false;
    }
  });
}
