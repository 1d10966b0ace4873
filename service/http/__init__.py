"""The HTTP layer: app factory, routes, middleware, access, schemas."""
