from django.urls import path

from hygiene.suggestions import views

app_name = "suggestions"
urlpatterns = [
    path("<int:pk>/accept", views.accept_one, name="accept"),
    path("<int:pk>/reject", views.reject, name="reject"),
    path("<slug:rule>/", views.suggestion_list, name="list"),
    path("<slug:rule>/accept", views.accept_matching, name="accept-matching"),
]
