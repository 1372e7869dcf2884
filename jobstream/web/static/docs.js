// Swagger UI for jobstream, served by the worker itself: no CDN, no inline script. A token
// entered under "Authorize" stays in this page's memory only (persistAuthorization off): it is
// not written to localStorage, and is gone when the page is closed.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    persistAuthorization: false,
  });
});
