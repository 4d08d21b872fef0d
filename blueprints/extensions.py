"""Flask extensions, created unbound and initialised in create_app()."""

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from services.stores.models import Base

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
# Per client IP: request.remote_addr, which ProxyFix sets from X-Forwarded-For
# only when TRUSTED_PROXIES says how many proxies to believe.
limiter = Limiter(key_func=get_remote_address)
