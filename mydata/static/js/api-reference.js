/* The API reference at /docs: render /openapi.json with Swagger UI (loaded before this file, from
   /docs/assets; no inline script: CSP script-src 'self'). */
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  if (!root || typeof window.SwaggerUIBundle !== "function") {
    return;
  }

  /* Swagger UI 4 reads OpenAPI 3.0 only, and /openapi.json is 3.1. The two differ, in this document,
     in one way Swagger UI shows: a field that may be null is `type: [T, "null"]` in 3.1 and
     `type: T, nullable: true` in 3.0. Rewrite that, and the version, in the copy the page shows.
     Examples are values, not schemas: they are left as they are. */
  function asOpenApi30(node) {
    if (Array.isArray(node)) {
      node.forEach(asOpenApi30);
      return node;
    }
    if (node === null || typeof node !== "object") {
      return node;
    }
    if (Array.isArray(node.type)) {
      var types = node.type.filter(function (type) { return type !== "null"; });
      if (types.length < node.type.length) {
        node.nullable = true;
      }
      if (types.length === 1) {
        node.type = types[0];
      } else {
        delete node.type;
      }
    }
    Object.keys(node).forEach(function (key) {
      if (key !== "example" && key !== "examples") {
        asOpenApi30(node[key]);
      }
    });
    return node;
  }

  /* Swagger UI 4's tabs (Example Value | Schema) name, in aria-controls, the panel of every tab, but
     render only the chosen one's: an ARIA reference to nothing, which screen readers cannot follow
     (axe-core: aria-valid-attr-value). Drop a reference whenever its panel is not on the page. */
  function dropDanglingControls() {
    root.querySelectorAll("[aria-controls]").forEach(function (element) {
      if (!document.getElementById(element.getAttribute("aria-controls"))) {
        element.removeAttribute("aria-controls");
      }
    });
  }
  new MutationObserver(dropDanglingControls).observe(root, {
    subtree: true,
    childList: true,
    attributes: true,
    attributeFilter: ["aria-controls"]
  });

  function failed() {
    var message = document.createElement("p");
    message.className = "notice";
    message.setAttribute("role", "alert");
    message.lang = document.documentElement.lang;  // the page's language, inside the English reference
    message.textContent = root.getAttribute("data-error");
    root.appendChild(message);
  }

  fetch(root.getAttribute("data-spec"), {credentials: "same-origin", headers: {Accept: "application/json"}})
    .then(function (response) {
      if (!response.ok) {
        throw new Error("GET " + response.url + ": " + response.status);
      }
      return response.json();
    })
    .then(function (document31) {
      var spec = asOpenApi30(document31);
      spec.openapi = "3.0.3";
      if (spec.info && spec.info.license) {
        delete spec.info.license.identifier;
      }
      window.SwaggerUIBundle({
        spec: spec,
        domNode: root,
        presets: [window.SwaggerUIBundle.presets.apis],
        layout: "BaseLayout",
        deepLinking: true,
        docExpansion: "list",
        defaultModelsExpandDepth: 0,
        // The document is the only one this page shows: no ?url= or ?configUrl= from a link.
        queryConfigEnabled: false,
        // Swagger UI would otherwise send the document to validator.swagger.io for a badge.
        validatorUrl: null,
        // No "Try it out": nearly every call needs the integrator's own keys (a client assertion, a DPoP
        // proof signed per request, an operator token), which belong in its system, not in a web page;
        // and a request sent from here would carry the visitor's session cookie, which no reference
        // page should spend. The public reads (catalogue, ledger, keys) are one URL each.
        supportedSubmitMethods: []
      });
    })
    .catch(failed);
})();
