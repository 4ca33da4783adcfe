"""What shows: the Gradio app. Imports point one way: dashboard -> profiling -> engines."""
