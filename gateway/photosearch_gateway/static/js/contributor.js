// Writes to the catalog (a new item, a photo) name their contributor: the gateway's
// contributor token or a token from its identity provider, given once per tab.
import { errorText, t } from "/static/js/i18n.js";

const KEY = "photosearch-contributor-token";
const $ = (id) => document.getElementById(id);

export function token() {
  return sessionStorage.getItem(KEY) || "";
}

function show() {
  const signedIn = Boolean(token());
  $("contributor-form").hidden = signedIn;
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

export function setup() {
  $("contributor-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY, $("contributor-token").value.trim());
    $("contributor-token").value = "";
    $("contributor-reason").textContent = t("contributor.signed_in_retry");
    show();
  });
  $("contributor-sign-out").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    $("contributor-reason").textContent = "";
    $("contributor").hidden = true;
    show();
  });
  $("contributor").hidden = !token();
  show();
}
