"""Flask extensions, created unbound and initialised in create_app()."""

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from services.stores.models import Base

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
