"""gRPC plumbing: servers, stream handlers, TLS, the sender's spool."""
