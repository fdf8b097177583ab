// Writes to the catalog (a new item, a photo) name their contributor: a token pasted once
// per tab (the gateway's contributor token, or one from the identity provider), or a
// sign-in with the identity provider when the gateway offers one (/config's sign_in):
// the authorization code flow with PKCE, the code redeemed by the gateway.
import { api } from "/static/js/api.js";
import { errorText, t } from "/static/js/i18n.js";

const KEY = "photosearch-contributor-token";
const FLOW = "photosearch-sign-in"; // the PKCE verifier and state while the provider is asked
const $ = (id) => document.getElementById(id);
let offer = null;

export function token() {
  return sessionStorage.getItem(KEY) || "";
}

function show() {
  const signedIn = Boolean(token());
  $("contributor-form").hidden = signedIn;
  $("contributor-oidc").hidden = signedIn || !offer;
  $("contributor-signed-in").hidden = !signedIn;
}

// A write was refused for want of a (good) token: say why and ask for one.
export function refused(error) {
  if (error?.status !== 401 && error?.status !== 403) return false;
  sessionStorage.removeItem(KEY);
  $("contributor").hidden = false;
  $("contributor-reason").textContent = errorText(error);
  show();
  $("contributor-token").focus();
  return true;
}

const base64url = (bytes) =>
  btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const random = (size) => base64url(crypto.getRandomValues(new Uint8Array(size)));
const here = () => location.origin + location.pathname;

async function signInWithProvider() {
  const verifier = random(32);
  const state = random(16);
  const challenge = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  sessionStorage.setItem(FLOW, JSON.stringify({ verifier, state }));
  const url = new URL(offer.authorization_endpoint);
  const params = {
    response_type: "code", client_id: offer.client_id, redirect_uri: here(), scope: offer.scope,
    state, code_challenge: challenge, code_challenge_method: "S256",
  };
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  location.assign(url.toString());
}

// Back from the provider (?code=&state=): redeem the code, then tidy the address bar.
export async function completeSignIn() {
  const query = new URLSearchParams(location.search);
  if (!query.has("code") && !query.has("error")) return;
  const flow = JSON.parse(sessionStorage.getItem(FLOW) || "null");
  sessionStorage.removeItem(FLOW);
  history.replaceState(null, "", here());
  $("contributor").hidden = false;
  if (query.has("error")) {
    $("contributor-reason").textContent = t("contributor.provider_refused", { reason: query.get("error_description") || query.get("error") });
    return;
  }
  if (!flow || flow.state !== query.get("state")) {
    $("contributor-reason").textContent = t("contributor.stale_sign_in");
    return;
  }
  try {
    const signed = await api("/api/v1/auth/token", {
      method: "POST", json: { code: query.get("code"), code_verifier: flow.verifier, redirect_uri: here() },
    });
    sessionStorage.setItem(KEY, signed.access_token);
    $("contributor-reason").textContent = t("contributor.signed_in_as", { name: signed.name });
  } catch (error) {
    $("contributor-reason").textContent = t("contributor.sign_in_failed", { reason: errorText(error) });
  }
  show();
}

export function setup(config) {
  offer = config?.sign_in ?? null;
  $("contributor-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY, $("contributor-token").value.trim());
    $("contributor-token").value = "";
    $("contributor-reason").textContent = t("contributor.signed_in_retry");
    show();
  });
  $("contributor-oidc").addEventListener("click", signInWithProvider);
  $("contributor-sign-out").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    $("contributor-reason").textContent = "";
    $("contributor").hidden = true;
    show();
  });
  if (token()) $("contributor").hidden = false;
  show();
}
