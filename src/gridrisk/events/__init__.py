"""The events outbox: live event hub for SSE clients and the outbox reader."""
