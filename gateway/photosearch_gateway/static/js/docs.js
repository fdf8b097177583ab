// The /docs page: Swagger UI over the gateway's own OpenAPI document. A file, not an
// inline script, so the page runs under the gateway's Content-Security-Policy.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  displayOperationId: true,
});
