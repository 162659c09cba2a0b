"""What is measured: anything that streams generated tokens for a request."""
