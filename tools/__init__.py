"""Development tools: the demo runner, the demo model's training, a private Mosquitto broker."""
