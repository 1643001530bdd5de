"""A Docker-free local stack for SAM templates that declare API Gateway WebSocket APIs."""
