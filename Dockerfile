FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# Hashed static file names, cached for a year by browsers (whitenoise), at build and at run time.
ENV STATIC_MANIFEST=1
RUN DJANGO_SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput
RUN useradd --create-home hygiene && mkdir -p /app/var && chown -R hygiene /app/var
USER hygiene
EXPOSE 8000
CMD ["gunicorn", "hygiene.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
