# The development mail sink for docker-compose (deploy/local/mailsink.py).
FROM python:3.11-slim
WORKDIR /app
COPY constraints.txt deploy/local/mailsink.py ./
RUN pip install --no-cache-dir -c constraints.txt aiosmtpd aiohttp && useradd --system --uid 10001 sink
USER sink
EXPOSE 2525 8025
CMD ["python", "mailsink.py", "--host", "0.0.0.0"]
