"""ByteDance ImageX dialect: STS credentials, signed OpenAPI actions, the upload host."""
