import os

from app import create_app, prepare_embedded

prepare_embedded(os.environ)
app = create_app()
