"""HTTP/WebSocket API, WebRTC sessions and RTMP/HLS output (planned; see issues 5-7)."""
