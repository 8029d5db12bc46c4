"""HTTP side: the FastAPI app (create_app), auth, the recordings API and the supervisor page."""
