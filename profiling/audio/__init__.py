"""What is judged in the audio: playback simulation, joins, quality, intelligibility."""
