"""The TF Serving directory: its versioned layout, claims and leases for writing a version,
the Pusher that publishes one atomically on any filesystem, and its warm-up requests."""
